// Kernel choice by measurement (ops/kernel_choice.h): every family's measured choice is one of
// the candidates this CPU supports, its report has a figure per candidate, and the overrides
// (set_kernel_variant, set_simd_level, MLA_SIMD) take effect and are undone. The kernels each
// choice runs are tested for equal results in test_simd_dispatch.cc, test_latent_attention.cc
// and test_skinny.cc, which hold every level in turn.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ops/cpu_features.h"
#include "ops/kernel_choice.h"

namespace mla {
namespace {

using ops::KernelFamily;
using ops::SimdLevel;

bool is_candidate(const ops::KernelChoiceReport& r, int variant) {
  return std::any_of(r.candidates.begin(), r.candidates.end(),
                     [variant](const ops::KernelCandidate& c) { return c.variant == variant; });
}

class KernelChoice : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("MLA_SIMD") != nullptr) GTEST_SKIP() << "MLA_SIMD is set";
    ops::set_simd_level(std::nullopt);
  }
  void TearDown() override {
    for (KernelFamily f : ops::kKernelFamilies) ops::set_kernel_variant(f, std::nullopt);
    ops::set_simd_level(std::nullopt);
  }
};

TEST_F(KernelChoice, MeasuredChoiceIsASupportedCandidate) {
  for (KernelFamily f : ops::kKernelFamilies) {
    const ops::KernelChoiceReport r = ops::kernel_choice_report(f);
    SCOPED_TRACE(r.family);
    ASSERT_FALSE(r.candidates.empty());
    EXPECT_EQ(r.how, "measured");
    EXPECT_TRUE(is_candidate(r, r.chosen));
    EXPECT_EQ(ops::kernel_variant(f), r.chosen);
    for (const ops::KernelCandidate& c : r.candidates) {
      EXPECT_EQ(c.name, ops::kernel_variant_name(f, c.variant));
      if (f != KernelFamily::kGemmBf16) {
        EXPECT_LE(static_cast<SimdLevel>(c.variant), ops::supported_simd_level());
        EXPECT_GT(c.gflops, 0.0) << c.name;  // every SIMD candidate actually ran
      }
    }
    // The chosen one is the highest candidate or beats it by the margin.
    const ops::KernelCandidate& top = r.candidates.back();
    for (const ops::KernelCandidate& c : r.candidates) {
      if (c.variant == r.chosen && c.variant != top.variant) {
        EXPECT_GT(c.gflops, top.gflops * (1.0 + ops::kMargin));
      }
    }
  }
  // Float32 caches and weights have no bf16-dot variant.
  EXPECT_LE(ops::kernel_level(KernelFamily::kLatentF32), SimdLevel::kAvx512);
  EXPECT_LE(ops::kernel_level(KernelFamily::kSkinnyF32), SimdLevel::kAvx512);
}

TEST_F(KernelChoice, ConcurrentFirstUsesAgree) {
  std::vector<int> seen(4, -1);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i)
    threads.emplace_back([&seen, i] { seen[i] = ops::kernel_variant(KernelFamily::kSkinnyBf16); });
  for (std::thread& t : threads) t.join();
  for (int v : seen) EXPECT_EQ(v, seen[0]);
}

TEST_F(KernelChoice, SetKernelVariantPinsOneFamily) {
  const int measured_f32 = ops::kernel_variant(KernelFamily::kLatentF32);
  for (const ops::KernelCandidate& c :
       ops::kernel_choice_report(KernelFamily::kLatentBf16).candidates) {
    EXPECT_EQ(ops::set_kernel_variant(KernelFamily::kLatentBf16, c.variant), c.variant);
    EXPECT_EQ(ops::kernel_variant(KernelFamily::kLatentBf16), c.variant);
    EXPECT_EQ(ops::kernel_choice_report(KernelFamily::kLatentBf16).how, "set_kernel_variant");
    EXPECT_EQ(ops::kernel_variant(KernelFamily::kLatentF32), measured_f32);  // untouched
  }
  // Above the CPU: clamped to its best candidate.
  const int best = ops::kernel_choice_report(KernelFamily::kSkinnyF32).candidates.back().variant;
  EXPECT_EQ(ops::set_kernel_variant(KernelFamily::kSkinnyF32, 99), best);
  ops::set_kernel_variant(KernelFamily::kLatentBf16, std::nullopt);
  EXPECT_EQ(ops::kernel_choice_report(KernelFamily::kLatentBf16).how, "measured");
}

TEST_F(KernelChoice, ForcedSimdLevelHoldsEveryFamily) {
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512,
                          SimdLevel::kAvx512Bf16, SimdLevel::kAmx}) {
    const SimdLevel effective = ops::set_simd_level(level);
    EXPECT_TRUE(ops::simd_level_forced());
    for (KernelFamily f : {KernelFamily::kLatentF32, KernelFamily::kLatentBf16,
                           KernelFamily::kSkinnyF32, KernelFamily::kSkinnyBf16}) {
      const SimdLevel got = ops::kernel_level(f);
      EXPECT_LE(got, effective);
      const bool f32 = f == KernelFamily::kLatentF32 || f == KernelFamily::kSkinnyF32;
      // Only the skinny bf16-weight products have an AMX kernel.
      const SimdLevel top = f32                              ? SimdLevel::kAvx512
                            : f == KernelFamily::kSkinnyBf16 ? SimdLevel::kAmx
                                                             : SimdLevel::kAvx512Bf16;
      EXPECT_EQ(got, std::min(effective, top));
    }
    EXPECT_NE(ops::kernel_choice_report(KernelFamily::kLatentF32).how.find("MLA_SIMD"),
              std::string::npos);
  }
  ops::set_simd_level(std::nullopt);
  EXPECT_FALSE(ops::simd_level_forced());
}

// amx-bf16 is a candidate of the skinny bf16 family only, and only where the tiles are usable;
// pinning it elsewhere runs the best candidate below.
TEST_F(KernelChoice, AmxIsASkinnyBf16CandidateOnlyWhereUsable) {
  const bool amx = ops::supported_simd_level() == SimdLevel::kAmx;
  const int kAmx = static_cast<int>(SimdLevel::kAmx);
  EXPECT_EQ(ops::kernel_variant_name(KernelFamily::kSkinnyBf16, kAmx), "amx-bf16");
  for (KernelFamily f : ops::kKernelFamilies) {
    if (f == KernelFamily::kGemmBf16) continue;
    const ops::KernelChoiceReport r = ops::kernel_choice_report(f);
    EXPECT_EQ(is_candidate(r, kAmx), amx && f == KernelFamily::kSkinnyBf16) << r.family;
    EXPECT_LE(r.chosen, f == KernelFamily::kSkinnyBf16 ? kAmx : kAmx - 1) << r.family;
  }
  const int best = ops::kernel_choice_report(KernelFamily::kSkinnyBf16).candidates.back().variant;
  EXPECT_EQ(ops::set_kernel_variant(KernelFamily::kSkinnyBf16, kAmx), amx ? kAmx : best);
  ::setenv("MLA_SIMD", "amx", 1);
  EXPECT_EQ(ops::set_simd_level(std::nullopt), ops::supported_simd_level());
  EXPECT_EQ(ops::kernel_variant(KernelFamily::kSkinnyBf16), best);
  EXPECT_LE(ops::kernel_level(KernelFamily::kLatentBf16), SimdLevel::kAvx512Bf16);
  ::unsetenv("MLA_SIMD");
}

TEST_F(KernelChoice, EnvironmentVariableForcesTheLevel) {
  ::setenv("MLA_SIMD", "avx2", 1);
  const SimdLevel effective = ops::set_simd_level(std::nullopt);
  EXPECT_TRUE(ops::simd_level_forced());
  EXPECT_EQ(ops::kernel_level(KernelFamily::kLatentBf16), effective);
  EXPECT_EQ(ops::kernel_level(KernelFamily::kSkinnyBf16), effective);
  ::unsetenv("MLA_SIMD");
  ops::set_simd_level(std::nullopt);
  EXPECT_FALSE(ops::simd_level_forced());
  EXPECT_EQ(ops::kernel_variant(KernelFamily::kLatentBf16),
            ops::kernel_choice_report(KernelFamily::kLatentBf16).chosen);
}

}  // namespace
}  // namespace mla
