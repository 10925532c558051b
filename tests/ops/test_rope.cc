// RoPE / YaRN frequencies against the closed form of mla-math.md, and rotation properties.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "mla/config.h"
#include "model/rope_params.h"
#include "ops/rope.h"

namespace mla {
namespace {

TEST(Rope, PlainFrequenciesAreThetaPowers) {
  MlaConfig c = preset_config("tiny");
  c.qk_rope_head_dim = 16;
  const auto f = ops::rope_frequencies(rope_params(c));
  ASSERT_EQ(f.size(), 8u);
  for (int k = 0; k < 8; ++k)
    EXPECT_FLOAT_EQ(f[k], static_cast<float>(std::pow(10000.0, -2.0 * k / 16.0)));
  EXPECT_EQ(ops::rope_amplitude(rope_params(c)), 1.0f);
}

TEST(Rope, YarnFrequenciesMatchClosedFormForDeepSeekV3) {
  MlaConfig c = preset_config("deepseek-v3");
  // corr(32) = 64 ln(4096 / (64 pi)) / (2 ln 10000) = 10.47 -> low = 10;
  // corr(1) = 64 ln(4096 / (2 pi)) / (2 ln 10000) = 22.51 -> high = 23.
  const double corr_fast =
      64.0 * std::log(4096.0 / (32.0 * 2.0 * std::numbers::pi)) / (2.0 * std::log(10000.0));
  const double corr_slow =
      64.0 * std::log(4096.0 / (1.0 * 2.0 * std::numbers::pi)) / (2.0 * std::log(10000.0));
  ASSERT_NEAR(corr_fast, 10.4715, 1e-3);
  ASSERT_NEAR(corr_slow, 22.5134, 1e-3);
  const auto f = ops::rope_frequencies(rope_params(c));
  ASSERT_EQ(f.size(), 32u);
  for (int k = 0; k < 32; ++k) {
    const double base = std::pow(10000.0, -2.0 * k / 64.0);
    double expected;
    if (k <= 10) {
      expected = base;  // high-frequency dims keep their frequency
    } else if (k >= 23) {
      expected = base / 40.0;  // low-frequency dims are interpolated by the factor
    } else {
      const double ramp = (k - 10.0) / 13.0;
      expected = base / 40.0 * ramp + base * (1.0 - ramp);
    }
    EXPECT_NEAR(f[k], expected, 1e-7 * base) << "k=" << k;
  }
}

TEST(Rope, YarnOffKeepsPlainFrequencies) {
  MlaConfig c = preset_config("deepseek-v3");
  c.max_position_embeddings = 4096;  // the run never exceeds the original length
  const auto f = ops::rope_frequencies(rope_params(c));
  for (int k = 0; k < 32; ++k)
    EXPECT_FLOAT_EQ(f[k], static_cast<float>(std::pow(10000.0, -2.0 * k / 64.0)));
}

TEST(Rope, AmplitudeIsMscaleRatio) {
  MlaConfig c = preset_config("deepseek-v2-lite");
  EXPECT_FLOAT_EQ(ops::rope_amplitude(rope_params(c)), 1.0f);  // mscale == mscale_all_dim
  c.rope_scaling.mscale = 1.0;
  c.rope_scaling.mscale_all_dim = 0.0;
  EXPECT_FLOAT_EQ(ops::rope_amplitude(rope_params(c)),
                  static_cast<float>(0.1 * std::log(40.0) + 1.0));
}

TEST(Rope, RotatesInterleavedPairs) {
  MlaConfig c = preset_config("tiny");  // d_r = 8
  const auto f = ops::rope_frequencies(rope_params(c));
  std::vector<float> cs(8);
  ops::rope_cos_sin(f, 1.0f, 3, cs.data());
  std::vector<float> x = {1, 0, 0, 1, 2, 3, -1, 0.5f};
  std::vector<float> y = x;
  ops::rope_apply(y.data(), 1, 8, 8, cs.data());
  for (int k = 0; k < 4; ++k) {
    const double a = 3.0 * f[k];
    EXPECT_NEAR(y[2 * k], x[2 * k] * std::cos(a) - x[2 * k + 1] * std::sin(a), 1e-6);
    EXPECT_NEAR(y[2 * k + 1], x[2 * k] * std::sin(a) + x[2 * k + 1] * std::cos(a), 1e-6);
  }
}

TEST(Rope, DotProductDependsOnlyOnRelativePosition) {
  MlaConfig c = preset_config("deepseek-v2-lite");
  const auto f = ops::rope_frequencies(rope_params(c));
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> q(64), k(64);
  for (auto& v : q) v = n(rng);
  for (auto& v : k) v = n(rng);
  auto rotated_dot = [&](int64_t pq, int64_t pk) {
    std::vector<float> cs(64), a = q, b = k;
    ops::rope_cos_sin(f, 1.0f, pq, cs.data());
    ops::rope_apply(a.data(), 1, 64, 64, cs.data());
    ops::rope_cos_sin(f, 1.0f, pk, cs.data());
    ops::rope_apply(b.data(), 1, 64, 64, cs.data());
    double s = 0;
    for (int i = 0; i < 64; ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
  };
  EXPECT_NEAR(rotated_dot(10, 3), rotated_dot(107, 100), 1e-4);
  EXPECT_NEAR(rotated_dot(0, 0), rotated_dot(50, 50), 1e-4);
}

}  // namespace
}  // namespace mla
