// Quantized latent cache rows (DeepSeek-V3.2's FP8 layout, as FlashMLA and SGLang's CPU
// backend store it, and an int8 variant): the first `quantized` numbers of a row (the latent
// c_kv, R = 512) in groups of 128, each group one float32 scale, then the `rope` numbers (k_pe,
// Dr = 64) in bf16, which stay unquantized because the rotary part carries position and a
// small error there moves every score:
//
//   [ R x fp8 e4m3 or int8 | ceil(R / 128) x float32 scale | Dr x bf16 ]
//
// R = 512, Dr = 64: 512 + 4 x 4 + 64 x 2 = 656 bytes per token, against 1152 in bf16 and 2304
// in float32. value = code x scale; scale = max |x| of the group / 448 (fp8) or / 127 (int8),
// so the largest number of a group is exact and the others carry e4m3's 3-bit mantissa
// (relative error <= 2^-4) or int8's absolute error <= scale / 2.
#pragma once

#include <cstdint>

#include "mla/dtype.h"

namespace mla {

inline constexpr int64_t kQuantGroup = 128;

// kF8E4M3 or kI8.
bool is_quantized_cache_dtype(DType dtype);
int64_t quantized_row_scales(int64_t quantized);
int64_t quantized_row_bytes(int64_t quantized, int64_t rope);
// Byte offsets inside a row: scales (float32, unaligned), then the bf16 rope part.
inline int64_t quantized_row_scale_offset(int64_t quantized) {
  return quantized;
}
int64_t quantized_row_rope_offset(int64_t quantized);

// One row of quantized + rope float32 numbers to the layout above, and back. A NaN or infinite
// number makes its group's scale non-finite, so every number of the group decodes non-finite
// (as with a float cache, a bad row cannot turn silently finite).
void quantize_row(const float* src, int64_t quantized, int64_t rope, DType dtype, void* dst);
void dequantize_row(const void* src, int64_t quantized, int64_t rope, DType dtype, float* dst);

}  // namespace mla
