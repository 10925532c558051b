// The random initialisation every layer's `random` weights share: a tensor of `shape` named
// `name` filled from rng. Vectors (norm gains and biases) are drawn around 1 and around 0 (small
// but not zero, so tests see them); matrices (out, in) uniformly with variance 1/in, which keeps
// activations O(1) through every projection.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace mla {

void fill_random_tensor(const std::string& name, const std::vector<int64_t>& shape,
                        std::vector<float>& data, std::mt19937_64& rng);

}  // namespace mla
