#include "mla/dtype.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "mla/error.h"

namespace mla {

std::string_view dtype_name(DType dtype) {
  return enum_name(dtype);
}

std::optional<DType> dtype_from_name(std::string_view name) {
  // No "I8": checkpoints' int8 tensors need scales this loader does not read, so they stay an
  // unknown dtype there; kI8 is a cache storage type only.
  const std::optional<DType> dtype = enum_from_name<DType>(name);
  if (dtype == DType::kI8) return std::nullopt;
  return dtype;
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kBF16:
    case DType::kF16:
      return 2;
    case DType::kF8E4M3:
    case DType::kI8:
      return 1;
  }
  return 0;
}

float bf16_to_f32(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

namespace {

// Without branches, so that conversion loops vectorise (rounding activations for the bf16
// products took 4-5% of a bf16 prefill one number at a time).
inline uint16_t bf16_bits_of(uint32_t bits) {
  // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit.
  const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
  return static_cast<uint16_t>((nan ? bits | 0x00400000u : rounded) >> 16);  // NaN stays quiet
}

}  // namespace

uint16_t f32_to_bf16(float value) {
  return bf16_bits_of(std::bit_cast<uint32_t>(value));
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero and subnormals
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::bit_cast<float>(((exponent + 112u) << 23) | (mantissa << 13));
  }
  return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
}

uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  if (std::isnan(value)) return static_cast<uint16_t>(sign | 0x7e00u);
  const float a = std::fabs(value);
  if (a >= 65520.0f) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (a < 6.103515625e-05f) {
    // Subnormal range: value / 2^-24 rounded to nearest even integer.
    const float scaled = a * 16777216.0f;
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled)));
  }
  uint32_t m = bits & 0x7fffffffu;
  m += 0x0fffu + ((m >> 13) & 1u);  // round mantissa to 10 bits, ties to even
  const uint32_t exponent = (m >> 23) - 112u;
  return static_cast<uint16_t>(sign | (exponent << 10) | ((m >> 13) & 0x3ffu));
}

float fp8_e4m3_to_f32(uint8_t bits) {
  const float sign = (bits & 0x80u) ? -1.0f : 1.0f;
  const int exponent = (bits >> 3) & 0xf;
  const int mantissa = bits & 0x7;
  if (exponent == 0xf && mantissa == 0x7) return NAN;  // e4m3fn has no infinities
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
}

uint8_t f32_to_fp8_e4m3(float value) {
  if (std::isnan(value)) return 0x7f;
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  const float a = std::fabs(value);
  if (a >= 448.0f) return sign | 0x7e;  // saturate: e4m3fn's largest finite number
  // Below 2^-6 the spacing is the subnormals' 2^-9; above, 3 mantissa bits per binade.
  int exponent = 0;
  std::frexp(a, &exponent);  // a = m * 2^exponent, m in [0.5, 1)
  const int e = std::max(exponent - 1, -6);
  const float step = std::ldexp(1.0f, e - 3);
  const float q = std::nearbyint(a / step) * step;  // ties to even (default rounding mode)
  if (q == 0.0f) return sign;
  int qe = 0;
  const float qm = std::frexp(q, &qe);  // q may have rounded up into the next binade
  if (qe - 1 < -6) return sign | static_cast<uint8_t>(std::lround(q / std::ldexp(1.0f, -9)));
  const int mantissa = static_cast<int>(std::lround((qm * 2.0f - 1.0f) * 8.0f));
  return sign | static_cast<uint8_t>(((qe - 1 + 7) << 3) | mantissa);
}

void convert_to_f32(const void* src, DType dtype, std::size_t n, float* dst) {
  if (n == 0) return;  // empty tensors may come with null pointers
  const auto* bytes = static_cast<const unsigned char*>(src);
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kBF16:
      for (std::size_t i = 0; i < n; ++i) {
        dst[i] = bf16_to_f32(static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8)));
      }
      return;
    case DType::kF16:
      for (std::size_t i = 0; i < n; ++i) {
        dst[i] = f16_to_f32(static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8)));
      }
      return;
    case DType::kF8E4M3:
      for (std::size_t i = 0; i < n; ++i) dst[i] = fp8_e4m3_to_f32(bytes[i]);
      return;
    case DType::kI8:
      for (std::size_t i = 0; i < n; ++i)
        dst[i] = static_cast<float>(static_cast<int8_t>(bytes[i]));
      return;
  }
}

void convert_from_f32(const float* src, std::size_t n, DType dtype, void* dst) {
  // Scaled formats: quantized_row.h writes them with their scales.
  if (dtype == DType::kF8E4M3) throw Error("convert: writing F8_E4M3 is not supported");
  if (dtype == DType::kI8) throw Error("convert: writing I8 is not supported");
  if (n == 0) return;
  auto* bytes = static_cast<unsigned char*>(dst);
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kBF16:
      for (std::size_t i = 0; i < n; ++i) {
        uint32_t bits;
        std::memcpy(&bits, src + i, sizeof bits);
        const uint16_t h = bf16_bits_of(bits);
        bytes[2 * i] = static_cast<unsigned char>(h & 0xffu);
        bytes[2 * i + 1] = static_cast<unsigned char>(h >> 8);
      }
      return;
    case DType::kF16:
      for (std::size_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(src[i]);
        bytes[2 * i] = static_cast<unsigned char>(h & 0xffu);
        bytes[2 * i + 1] = static_cast<unsigned char>(h >> 8);
      }
      return;
    case DType::kF8E4M3:
    case DType::kI8:
      return;  // refused above
  }
}

}  // namespace mla
