// Rotary position embedding, DeepSeek's interleaved convention: pair (x[2k], x[2k+1]) is rotated
// by angle pos * f_k, with YaRN-corrected frequencies f_k.
#pragma once

#include <cstdint>
#include <vector>

#include "mla/config.h"

namespace mla::ops {

// f_k for k = 0 .. d_r/2 - 1, YaRN-corrected when config.yarn_active().
std::vector<float> rope_frequencies(const MlaConfig& config);

// Hugging Face's cos/sin multiplier yarn_mscale(factor, mscale) / yarn_mscale(factor,
// mscale_all_dim); 1 for every released DeepSeek model and when YaRN is off.
float rope_amplitude(const MlaConfig& config);

// cos/sin of pos * f_k (times amplitude) for one position: cos_sin has d_r entries
// (cos_0, sin_0, cos_1, sin_1, ...).
void rope_cos_sin(const std::vector<float>& freqs, float amplitude, int64_t pos, float* cos_sin);

// Rotates `count` vectors of width d_r = 2 * freqs.size(); vector i starts at x + i * stride.
void rope_apply(float* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin);

// The non-interleaved ("rotate-half", GPT-NeoX) convention with the same angles: pair
// (x[k], x[k + d_r/2]) is rotated by pos * f_k. DeepSeek-V3.2's lightning indexer uses this one.
void rope_apply_half(float* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin);

}  // namespace mla::ops
