// The parameter list of an LmConfig (one flat buffer, Hugging Face names, laid out from
// train/lm_tensors.h's one tensor list) and its initialisation. Checkpoints save and load by it
// and AdamW decides weight decay from it.
#include <cmath>
#include <random>

#include "mla/error.h"
#include "mla/model_lm.h"
#include "train/lm_tensors.h"

namespace mla {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<ParamTensor> lm_parameter_list(const LmConfig& c) {
  c.validate();
  std::vector<ParamTensor> list;
  int64_t offset = 0;
  train::LmTensorSet<char> names;  // the one tensor list; its slots are not used
  names.for_each_tensor(c, [&](const std::string& name, const std::vector<int64_t>& shape, char&) {
    int64_t numel = 1;
    for (int64_t s : shape) numel *= s;
    list.push_back(ParamTensor{name, shape, offset, numel, shape.size() == 2});
    offset += numel;
  });
  return list;
}

template <typename T>
void LmModelT<T>::init_random(uint64_t seed) {
  std::mt19937_64 rng(seed);
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.num_layers));
  for (const ParamTensor& t : tensors_) {
    T* p = params_.data() + t.offset;
    if (t.shape.size() == 1) {  // norm gains 1, biases 0
      const T value = ends_with(t.name, ".bias") ? T(0) : T(1);
      std::fill(p, p + t.numel, value);
      continue;
    }
    const bool residual =
        ends_with(t.name, "o_proj.weight") || ends_with(t.name, "down_proj.weight");
    // Drawn in double and rounded, so float and double models start from the same numbers.
    std::normal_distribution<double> dist(0.0, residual ? residual_std : 0.02);
    for (int64_t i = 0; i < t.numel; ++i) p[i] = static_cast<T>(static_cast<float>(dist(rng)));
  }
}

template <typename T>
const ParamTensor& LmModelT<T>::tensor(const std::string& name) const {
  for (const ParamTensor& t : tensors_) {
    if (t.name == name) return t;
  }
  throw Error("model: no parameter named '" + name + "'");
}

template void LmModelT<float>::init_random(uint64_t);
template void LmModelT<double>::init_random(uint64_t);
template const ParamTensor& LmModelT<float>::tensor(const std::string&) const;
template const ParamTensor& LmModelT<double>::tensor(const std::string&) const;

}  // namespace mla
