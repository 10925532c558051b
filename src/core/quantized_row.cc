#include "mla/quantized_row.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "mla/error.h"

namespace mla {

bool is_quantized_cache_dtype(DType dtype) {
  return dtype == DType::kF8E4M3 || dtype == DType::kI8;
}

int64_t quantized_row_scales(int64_t quantized) {
  return (quantized + kQuantGroup - 1) / kQuantGroup;
}

int64_t quantized_row_rope_offset(int64_t quantized) {
  return quantized + 4 * quantized_row_scales(quantized);
}

int64_t quantized_row_bytes(int64_t quantized, int64_t rope) {
  return quantized_row_rope_offset(quantized) + 2 * rope;
}

void quantize_row(const float* src, int64_t quantized, int64_t rope, DType dtype, void* dst) {
  if (!is_quantized_cache_dtype(dtype))
    throw Error("quantize_row: dtype must be F8_E4M3 or I8, got " + std::string(dtype_name(dtype)));
  auto* bytes = static_cast<unsigned char*>(dst);
  const bool fp8 = dtype == DType::kF8E4M3;
  for (int64_t g = 0; g * kQuantGroup < quantized; ++g) {
    const int64_t i0 = g * kQuantGroup, i1 = std::min(quantized, i0 + kQuantGroup);
    float amax = 0.0f;
    bool finite = true;
    for (int64_t i = i0; i < i1; ++i) {
      finite = finite && std::isfinite(src[i]);
      amax = std::max(amax, std::fabs(src[i]));
    }
    // A non-finite group stores a NaN scale (codes 0), so it decodes to NaN.
    float scale = finite ? amax / (fp8 ? 448.0f : 127.0f) : NAN;
    const float inv = finite && amax > 0.0f ? 1.0f / scale : 0.0f;
    if (finite && amax == 0.0f) scale = 0.0f;
    for (int64_t i = i0; i < i1; ++i) {
      const float x = src[i] * inv;
      if (fp8) {
        bytes[i] = f32_to_fp8_e4m3(x);
      } else {
        const float r = std::clamp(std::nearbyint(x), -127.0f, 127.0f);
        bytes[i] = static_cast<unsigned char>(static_cast<int8_t>(r));
      }
    }
    std::memcpy(bytes + quantized + 4 * g, &scale, sizeof(float));
  }
  convert_from_f32(src + quantized, static_cast<size_t>(rope), DType::kBF16,
                   bytes + quantized_row_rope_offset(quantized));
}

void dequantize_row(const void* src, int64_t quantized, int64_t rope, DType dtype, float* dst) {
  if (!is_quantized_cache_dtype(dtype))
    throw Error("dequantize_row: dtype must be F8_E4M3 or I8, got " +
                std::string(dtype_name(dtype)));
  const auto* bytes = static_cast<const unsigned char*>(src);
  for (int64_t i = 0; i < quantized; ++i) {
    float scale = 0.0f;
    std::memcpy(&scale, bytes + quantized + 4 * (i / kQuantGroup), sizeof(float));
    const float code = dtype == DType::kF8E4M3 ? fp8_e4m3_to_f32(bytes[i])
                                               : static_cast<float>(static_cast<int8_t>(bytes[i]));
    dst[i] = code * scale;
  }
  convert_to_f32(bytes + quantized_row_rope_offset(quantized), DType::kBF16,
                 static_cast<size_t>(rope), dst + quantized);
}

}  // namespace mla
