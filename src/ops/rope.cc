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

}  // namespace

std::vector<float> rope_frequencies(const MlaConfig& config) {
  const int64_t d_r = config.qk_rope_head_dim;
  const int64_t half = d_r / 2;
  std::vector<float> freqs(static_cast<size_t>(half));
  for (int64_t k = 0; k < half; ++k) {
    freqs[static_cast<size_t>(k)] = static_cast<float>(
        std::pow(config.rope_theta, -static_cast<double>(2 * k) / static_cast<double>(d_r)));
  }
  if (!config.yarn_active()) return freqs;

  const RopeScaling& s = config.rope_scaling;
  double low = std::floor(
      correction_dim(s.beta_fast, d_r, config.rope_theta, s.original_max_position_embeddings));
  double high = std::ceil(
      correction_dim(s.beta_slow, d_r, config.rope_theta, s.original_max_position_embeddings));
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(d_r - 1));
  if (low == high) high += 0.001;
  for (int64_t k = 0; k < half; ++k) {
    const double ramp = std::clamp((static_cast<double>(k) - low) / (high - low), 0.0, 1.0);
    const double f = freqs[static_cast<size_t>(k)];
    freqs[static_cast<size_t>(k)] = static_cast<float>(f / s.factor * ramp + f * (1.0 - ramp));
  }
  return freqs;
}

float rope_amplitude(const MlaConfig& config) {
  if (!config.yarn_active()) return 1.0f;
  const RopeScaling& s = config.rope_scaling;
  return static_cast<float>(yarn_mscale(s.factor, s.mscale) /
                            yarn_mscale(s.factor, s.mscale_all_dim));
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

void rope_apply(float* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin) {
  for (int64_t i = 0; i < count; ++i) {
    float* v = x + i * stride;
    for (int64_t k = 0; k < d_r; k += 2) {
      const float c = cos_sin[k];
      const float s = cos_sin[k + 1];
      const float a = v[k];
      const float b = v[k + 1];
      v[k] = a * c - b * s;
      v[k + 1] = a * s + b * c;
    }
  }
}

void rope_apply_half(float* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin) {
  const int64_t half = d_r / 2;
  for (int64_t i = 0; i < count; ++i) {
    float* v = x + i * stride;
    for (int64_t k = 0; k < half; ++k) {
      const float c = cos_sin[2 * k];
      const float s = cos_sin[2 * k + 1];
      const float a = v[k];
      const float b = v[k + half];
      v[k] = a * c - b * s;
      v[k + half] = a * s + b * c;
    }
  }
}

}  // namespace mla::ops
