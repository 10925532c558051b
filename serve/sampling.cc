#include "sampling.h"

#include <memory>
#include <random>

#include "mla/sampler.h"

namespace mla::serve {

std::function<int32_t(std::span<const float>, std::span<const int32_t>)> make_sampler(
    const SamplingRequest& request, std::span<const int32_t> prompt) {
  SamplerParams p;
  p.temperature = request.temperature;
  p.top_k = request.top_k;
  p.top_p = request.top_p;
  p.min_p = request.min_p;
  p.repeat_penalty = request.repeat_penalty;
  p.seed = request.seed ? *request.seed : std::random_device{}();
  auto sampler = std::make_shared<Sampler>(p);  // validates
  sampler->accept(prompt);
  return [sampler](std::span<const float> logits, std::span<const int32_t>) {
    return sampler->sample(logits);
  };
}

}  // namespace mla::serve
