#include "sampling.h"

#include <memory>
#include <random>

#include "mla/train_generate.h"

namespace mla::serve {

std::function<int32_t(std::span<const float>, std::span<const int32_t>)> make_sampler(
    const SamplingRequest& request) {
  SampleOptions options;
  options.temperature = request.temperature;
  options.top_k = request.top_k;
  auto rng = std::make_shared<uint64_t>(request.seed ? *request.seed : std::random_device{}());
  return [options, rng](std::span<const float> logits, std::span<const int32_t>) {
    return sample_token(logits, options, *rng);
  };
}

}  // namespace mla::serve
