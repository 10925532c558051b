// The sampler of a served request, from its OpenAI sampling fields; the prompt is the repeat
// penalty's first history. Throws mla::Error naming an invalid field.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "openai_api.h"

namespace mla::serve {

std::function<int32_t(std::span<const float> logits, std::span<const int32_t> generated)>
make_sampler(const SamplingRequest& request, std::span<const int32_t> prompt);

}  // namespace mla::serve
