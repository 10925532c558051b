// The skinny products that decode steps use (ops/skinny.h): ops::linear and ops::linear_bf16
// with 1..8 rows, at every SIMD level this CPU has, against a double-precision reference of
// the same products (bf16: x and w rounded to bf16 first, which is what every path multiplies),
// and agreeing with the oneDNN path that larger row counts take.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>
#include <vector>

#include "mla/dtype.h"
#include "ops/cpu_features.h"
#include "ops/gemm.h"
#include "ops/linear_bf16.h"
#include "ops/simd/skinny_kernels.h"

namespace mla {
namespace {

using ops::SimdLevel;

constexpr SimdLevel kLevels[] = {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512,
                                 SimdLevel::kAvx512Bf16, SimdLevel::kAmx};

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<float> round_to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> bits(v.size());
  convert_from_f32(v.data(), v.size(), DType::kBF16, bits.data());
  std::vector<float> out(v.size());
  convert_to_f32(bits.data(), DType::kBF16, out.size(), out.data());
  return out;
}

// Checks y against sum_k x[r][k] w[o][k] in double, relative to sum_k |x w| (the scale of the
// rounding a float32 sum can make).
void expect_products(const std::vector<float>& x, const std::vector<float>& w, int64_t rows,
                     int64_t in, int64_t out, const std::vector<float>& y, const char* what) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = 0, scale = 0;
      for (int64_t k = 0; k < in; ++k) {
        const double p = static_cast<double>(x[r * in + k]) * w[o * in + k];
        sum += p;
        scale += std::abs(p);
      }
      ASSERT_NEAR(y[r * out + o], sum, 2e-6 * scale + 1e-30)
          << what << ": row " << r << " of " << rows << ", output " << o << ", in " << in;
    }
  }
}

class Skinny : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (ops::set_simd_level(GetParam()) != GetParam()) {
      ops::set_simd_level(std::nullopt);
      GTEST_SKIP() << "this CPU lacks " << ops::simd_level_name(GetParam());
    }
  }
  void TearDown() override { ops::set_simd_level(std::nullopt); }
};

TEST_P(Skinny, Float32WeightsMatchTheReference) {
  for (int64_t in : {5, 64, 1000, 4099}) {
    for (int64_t out : {1, 7, 33, 300}) {
      const std::vector<float> w = random_values(static_cast<size_t>(out * in), 7);
      for (int64_t rows = 1; rows <= 9; ++rows) {  // 9: the oneDNN path, same answers
        const std::vector<float> x = random_values(static_cast<size_t>(rows * in), 11);
        std::vector<float> y(static_cast<size_t>(rows * out), -1.0f);
        ops::linear(x.data(), rows, in, w.data(), out, y.data());
        expect_products(x, w, rows, in, out, y, "linear");
      }
    }
  }
}

TEST_P(Skinny, Bf16WeightsMatchTheReferenceOfRoundedOperands) {
  for (int64_t in : {5, 64, 1000, 4099}) {
    for (int64_t out : {1, 7, 33, 300}) {
      const std::vector<float> w = round_to_bf16(random_values(static_cast<size_t>(out * in), 3));
      const std::vector<uint16_t> w_bf16 = ops::to_bf16(w);
      for (int64_t rows = 1; rows <= 9; ++rows) {
        const std::vector<float> x = random_values(static_cast<size_t>(rows * in), 5);
        std::vector<float> y(static_cast<size_t>(rows * out), -1.0f);
        ops::linear_bf16(x.data(), rows, in, w_bf16.data(), out, y.data());
        expect_products(round_to_bf16(x), w, rows, in, out, y, "linear_bf16");
      }
    }
  }
}

// linear_bf16 hands the kernels 32 outputs at a time; called directly, the VDPBF16PS kernel's
// K-blocked form (5-8 rows, x over 16 KiB) walks several 48-output blocks from any start, with
// chunk tails, and writes only its own outputs.
TEST(SkinnyBf16Dot, BlockedFormCoversAnyOutputRange) {
  if (ops::supported_simd_level() < SimdLevel::kAvx512Bf16) GTEST_SKIP() << "no AVX512_BF16";
  constexpr int64_t kOut = 211, kO0 = 3, kO1 = 203;
  for (int64_t in : {1000, 4099}) {
    const std::vector<float> w = round_to_bf16(random_values(static_cast<size_t>(kOut * in), 9));
    const std::vector<uint16_t> w_bf16 = ops::to_bf16(w);
    for (int64_t rows = 5; rows <= 8; ++rows) {
      const std::vector<float> x = round_to_bf16(random_values(static_cast<size_t>(rows * in), 4));
      const std::vector<uint16_t> x_bf16 = ops::to_bf16(x);
      std::vector<float> y(static_cast<size_t>(rows * kOut), -1.0f);
      ops::simd::skinny_bf16_dot_avx512bf16(x_bf16.data(), rows, in, w_bf16.data(), kO0, kO1,
                                            y.data(), kOut);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t o = 0; o < kOut; ++o) {
          if (o < kO0 || o >= kO1) {
            ASSERT_EQ(y[r * kOut + o], -1.0f) << "output " << o << " outside the range written";
            continue;
          }
          double sum = 0, scale = 0;
          for (int64_t k = 0; k < in; ++k) {
            const double p = static_cast<double>(x[r * in + k]) * w[o * in + k];
            sum += p;
            scale += std::abs(p);
          }
          ASSERT_NEAR(y[r * kOut + o], sum, 2e-6 * scale)
              << "row " << r << " of " << rows << ", output " << o << ", in " << in;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, Skinny, ::testing::ValuesIn(kLevels), [](const auto& param_info) {
  return std::string(ops::simd_level_name(param_info.param));
});

}  // namespace
}  // namespace mla
