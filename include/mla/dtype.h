// Element types found in checkpoints and the conversions to float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "mla/enum_names.h"

namespace mla {

// kI8: signed bytes; as kF8E4M3 only meaningful with scales (the quantized caches of
// mla/quantized_row.h).
enum class DType { kF32, kBF16, kF16, kF8E4M3, kI8 };
inline constexpr EnumName<DType> kDTypeNames[] = {{DType::kF32, "F32"},
                                                  {DType::kBF16, "BF16"},
                                                  {DType::kF16, "F16"},
                                                  {DType::kF8E4M3, "F8_E4M3"},
                                                  {DType::kI8, "I8"}};
constexpr std::span<const EnumName<DType>> enum_names(DType) {
  return kDTypeNames;
}

// safetensors spelling: "F32", "BF16", "F16", "F8_E4M3" (and "I8", which dtype_from_name
// does not accept: no checkpoint tensor is read as kI8).
std::string_view dtype_name(DType dtype);
std::optional<DType> dtype_from_name(std::string_view name);
std::size_t dtype_size(DType dtype);

float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);  // round to nearest even; NaN stays NaN
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);     // round to nearest even; overflow gives inf
float fp8_e4m3_to_f32(uint8_t bits);  // OCP e4m3fn: no infinities, 0x7f/0xff are NaN
// Round to nearest even; beyond +-448 saturates to +-448 (e4m3fn has no infinity); NaN -> 0x7f.
uint8_t f32_to_fp8_e4m3(float value);

// Converts n little-endian elements of `dtype` at `src` to float32 at `dst`.
void convert_to_f32(const void* src, DType dtype, std::size_t n, float* dst);
// Converts n float32 values to `dtype` (F32, BF16 or F16) at `dst`.
void convert_from_f32(const float* src, std::size_t n, DType dtype, void* dst);

}  // namespace mla
