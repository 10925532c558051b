#include "ops/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace mla::ops {
namespace {

// The rotary dimension index at which a wavelength completes `rotations` turns over the
// original context (YaRN's correction dimension).
double correction_dim(double rotations, int64_t d_r, double theta, int64_t original) {
  return static_cast<double>(d_r) *
         std::log(static_cast<double>(original) / (rotations * 2.0 * std::numbers::pi)) /
         (2.0 * std::log(theta));
}

double yarn_mscale(double factor, double mscale) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

// Pair k of a vector is (v[k * kStep], v[k * kStep + offset]): kStep 2, offset 1 interleaved;
// kStep 1, offset d_r/2 rotate-half.
template <int kStep, typename T>
void rotate_pairs(T* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin,
                  RopeDirection direction) {
  const int64_t half = d_r / 2, offset = kStep == 2 ? 1 : half;
  const T sign = direction == RopeDirection::kForward ? T(1) : T(-1);
  for (int64_t i = 0; i < count; ++i) {
    T* v = x + i * stride;
    for (int64_t k = 0; k < half; ++k) {
      const T c = static_cast<T>(cos_sin[2 * k]);
      const T s = sign * static_cast<T>(cos_sin[2 * k + 1]);
      const T a = v[k * kStep];
      const T b = v[k * kStep + offset];
      v[k * kStep] = a * c - b * s;
      v[k * kStep + offset] = a * s + b * c;
    }
  }
}

}  // namespace

std::vector<float> rope_frequencies(const RopeParams& p) {
  const int64_t d_r = p.dim;
  const int64_t half = d_r / 2;
  std::vector<float> freqs(static_cast<size_t>(half));
  for (int64_t k = 0; k < half; ++k) {
    freqs[static_cast<size_t>(k)] = static_cast<float>(
        std::pow(p.theta, -static_cast<double>(2 * k) / static_cast<double>(d_r)));
  }
  if (!p.yarn) return freqs;

  double low = std::floor(correction_dim(p.beta_fast, d_r, p.theta, p.original_context));
  double high = std::ceil(correction_dim(p.beta_slow, d_r, p.theta, p.original_context));
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(d_r - 1));
  if (low == high) high += 0.001;
  for (int64_t k = 0; k < half; ++k) {
    const double ramp = std::clamp((static_cast<double>(k) - low) / (high - low), 0.0, 1.0);
    const double f = freqs[static_cast<size_t>(k)];
    freqs[static_cast<size_t>(k)] = static_cast<float>(f / p.factor * ramp + f * (1.0 - ramp));
  }
  return freqs;
}

float rope_amplitude(const RopeParams& p) {
  if (!p.yarn) return 1.0f;
  return static_cast<float>(yarn_mscale(p.factor, p.mscale) /
                            yarn_mscale(p.factor, p.mscale_all_dim));
}

void rope_cos_sin(const std::vector<float>& freqs, float amplitude, int64_t pos, float* cos_sin) {
  // The angle is formed in float32 as DeepSeek's code does (outer product of float32 tensors),
  // so that long positions round the same way as the reference.
  const float p = static_cast<float>(pos);
  for (size_t k = 0; k < freqs.size(); ++k) {
    const float angle = p * freqs[k];
    cos_sin[2 * k] = static_cast<float>(std::cos(static_cast<double>(angle))) * amplitude;
    cos_sin[2 * k + 1] = static_cast<float>(std::sin(static_cast<double>(angle))) * amplitude;
  }
}

std::vector<float> rope_table(const RopeParams& p, int64_t count) {
  std::vector<float> table(static_cast<size_t>(count * p.dim));
  if (p.dim == 0) return table;
  const std::vector<float> freqs = rope_frequencies(p);
  const float amplitude = rope_amplitude(p);
  for (int64_t t = 0; t < count; ++t) rope_cos_sin(freqs, amplitude, t, table.data() + t * p.dim);
  return table;
}

template <typename T>
void rope_apply(T* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin,
                RopeDirection direction) {
  rotate_pairs<2>(x, count, stride, d_r, cos_sin, direction);
}

template <typename T>
void rope_apply_half(T* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin,
                     RopeDirection direction) {
  rotate_pairs<1>(x, count, stride, d_r, cos_sin, direction);
}

template <typename T>
void rope_apply_rows(T* x, int64_t rows, int64_t row_stride, int64_t vectors, int64_t vector_stride,
                     int64_t d_r, const float* table, int64_t period, RopeDirection direction) {
  if (d_r == 0) return;
#pragma omp parallel for schedule(static) if (rows * vectors * d_r > 65536)
  for (int64_t i = 0; i < rows; ++i) {
    rotate_pairs<2>(x + i * row_stride, vectors, vector_stride, d_r, table + (i % period) * d_r,
                    direction);
  }
}

template void rope_apply_rows<float>(float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                     const float*, int64_t, RopeDirection);
template void rope_apply_rows<double>(double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                      const float*, int64_t, RopeDirection);
template void rope_apply<float>(float*, int64_t, int64_t, int64_t, const float*, RopeDirection);
template void rope_apply<double>(double*, int64_t, int64_t, int64_t, const float*, RopeDirection);
template void rope_apply_half<float>(float*, int64_t, int64_t, int64_t, const float*,
                                     RopeDirection);
template void rope_apply_half<double>(double*, int64_t, int64_t, int64_t, const float*,
                                      RopeDirection);

}  // namespace mla::ops
