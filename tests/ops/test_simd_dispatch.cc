// Run-time SIMD dispatch (ops/cpu_features.h): detection agrees with the compiler's own CPU
// probe, MLA_SIMD and set_simd_level() lower the level and never raise it past the CPU, and
// ops::attention_forward gives the same results on every level it supports (MHA with DeepSeek's
// 192/128 head widths, GQA, MQA, the latent layout; F32 and BF16 caches; odd widths).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "attention_reference.h"
#include "mla/dtype.h"
#include "ops/amx_permission.h"
#include "ops/attention.h"
#include "ops/cpu_features.h"
#include "test_util.h"

namespace mla {
namespace {

using ops::SimdLevel;

constexpr SimdLevel kLevels[] = {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512,
                                 SimdLevel::kAvx512Bf16, SimdLevel::kAmx};

TEST(SimdDispatch, DetectionMatchesTheCompilersProbe) {
  const ops::CpuFeatures& f = ops::cpu_features();
  EXPECT_EQ(f.fma, __builtin_cpu_supports("fma") != 0);
#if !defined(__clang__)  // clang 14's probe does not know "f16c"
  EXPECT_EQ(f.f16c, __builtin_cpu_supports("f16c") != 0);
#endif
  EXPECT_EQ(f.avx2, __builtin_cpu_supports("avx2") != 0);
  EXPECT_EQ(f.avx512f, __builtin_cpu_supports("avx512f") != 0);
  EXPECT_EQ(f.avx512bw, __builtin_cpu_supports("avx512bw") != 0);
  EXPECT_EQ(f.avx512vl, __builtin_cpu_supports("avx512vl") != 0);
  EXPECT_EQ(f.avx512bf16, __builtin_cpu_supports("avx512bf16") != 0);
  if (f.avx512f && f.avx512bw && f.avx512vl && f.fma) {
    EXPECT_GE(ops::supported_simd_level(), SimdLevel::kAvx512);
  } else if (f.avx2 && f.fma && f.f16c) {
    EXPECT_EQ(ops::supported_simd_level(), SimdLevel::kAvx2);
  }
}

TEST(SimdDispatch, NamesRoundTrip) {
  for (SimdLevel level : kLevels)
    EXPECT_EQ(ops::simd_level_from_name(ops::simd_level_name(level)), level);
  EXPECT_EQ(ops::simd_level_from_name("sse9"), std::nullopt);
  EXPECT_EQ(ops::simd_level_from_name(""), std::nullopt);
}

TEST(SimdDispatch, SetLevelLowersButNeverRaisesPastTheCpu) {
  const SimdLevel supported = ops::supported_simd_level();
  for (SimdLevel level : kLevels) {
    const SimdLevel effective = ops::set_simd_level(level);
    EXPECT_EQ(effective, std::min(level, supported));
    EXPECT_EQ(ops::simd_level(), effective);
  }
  ops::set_simd_level(std::nullopt);
  if (std::getenv("MLA_SIMD") == nullptr) {
    EXPECT_EQ(ops::simd_level(), supported);
  }
}

// The amx level needs tiles the OS granted (ops/amx_permission.h); elsewhere asking for it
// (set_simd_level, MLA_SIMD=amx) runs the best level below.
TEST(SimdDispatch, AmxIsALevelOnlyWhereTheTilesAreUsable) {
  const ops::CpuFeatures& f = ops::cpu_features();
  EXPECT_EQ(f.amx_usable, f.amx_status == "present, permitted") << f.amx_status;
  if (!f.amx_bf16) {
    EXPECT_EQ(f.amx_status, "not present");
  }
  const bool amx = f.amx_usable && f.avx512bf16 && f.avx512f && f.avx512bw && f.avx512vl;
  EXPECT_EQ(ops::supported_simd_level() == SimdLevel::kAmx, amx);
  EXPECT_EQ(ops::set_simd_level(SimdLevel::kAmx),
            amx ? SimdLevel::kAmx : std::min(SimdLevel::kAvx512Bf16, ops::supported_simd_level()));
  ops::set_simd_level(std::nullopt);
}

TEST(SimdDispatch, AmxStatusSaysWhyTilesCannotRun) {
  EXPECT_EQ(ops::amx_status_text(false, false, {}), "not present");
  EXPECT_EQ(ops::amx_status_text(true, false, {}),
            "present, refused by the OS (XCR0 lacks the tile state: kernel older than 5.16?)");
  const ops::AmxPermission refused{false,
                                   "arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): Invalid argument"};
  EXPECT_EQ(ops::amx_status_text(true, true, refused),
            "present, refused by the OS (arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): Invalid "
            "argument)");
  EXPECT_EQ(ops::amx_status_text(true, true, {true, ""}), "present, permitted");
}

// MLA_SIMD is read when the level is reset to the environment's.
TEST(SimdDispatch, EnvironmentVariableLowersTheLevel) {
  const char* saved = std::getenv("MLA_SIMD");
  const std::string before = saved ? saved : "";
  const SimdLevel supported = ops::supported_simd_level();
  for (SimdLevel level : kLevels) {
    ::setenv("MLA_SIMD", std::string(ops::simd_level_name(level)).c_str(), 1);
    EXPECT_EQ(ops::set_simd_level(std::nullopt), std::min(level, supported));
  }
  ::setenv("MLA_SIMD", "not-an-isa", 1);  // ignored with a message: the default level
  EXPECT_EQ(ops::set_simd_level(std::nullopt), supported);
  if (saved) {
    ::setenv("MLA_SIMD", before.c_str(), 1);
  } else {
    ::unsetenv("MLA_SIMD");
  }
  ops::set_simd_level(std::nullopt);
}

struct Case {
  int64_t queries, context_before, heads, kv_heads, qk_dim, v_dim;
  bool latent;  // value = the first v_dim entries of the key row
  DType dtype;
};

std::string case_name(const Case& c) {
  std::ostringstream os;
  os << "T" << c.queries << "_ctx" << c.context_before << "_H" << c.heads << "_G" << c.kv_heads
     << "_qk" << c.qk_dim << "_v" << c.v_dim << (c.latent ? "_latent" : "") << "_"
     << dtype_name(c.dtype);
  return os.str();
}

// Keys (L, G, qk) and values (L, G, v) as the cache holds them (rounded when BF16), as floats.
struct Data {
  std::vector<float> q, k, v;
  std::vector<uint16_t> k16, v16;
  explicit Data(const Case& c) {
    const int64_t keys = c.context_before + c.queries;
    q = test::random_normal(c.queries * c.heads * c.qk_dim, 1);
    k = test::random_normal(keys * c.kv_heads * c.qk_dim, 2);
    v = test::random_normal(keys * c.kv_heads * c.v_dim, 3);
    if (c.dtype == DType::kBF16) {
      k16.resize(k.size());
      v16.resize(v.size());
      convert_from_f32(k.data(), k.size(), DType::kBF16, k16.data());
      convert_from_f32(v.data(), v.size(), DType::kBF16, v16.data());
      convert_to_f32(k16.data(), DType::kBF16, k.size(), k.data());
      convert_to_f32(v16.data(), DType::kBF16, v.size(), v.data());
    }
  }
};

test::AttentionShape shape(const Case& c) {
  return {c.queries, c.context_before, c.heads, c.kv_heads, c.qk_dim, c.v_dim, c.latent};
}

std::vector<float> reference(const Case& c, const Data& d, float scale) {
  return test::attention_reference(shape(c), d.q.data(), d.k.data(), d.v.data(), scale);
}

std::vector<float> run(const Case& c, const Data& d, float scale) {
  const bool bf16 = c.dtype == DType::kBF16;
  std::vector<float> out(c.queries * c.heads * c.v_dim, NAN);
  ops::KvView k, v;
  k.base = bf16 ? static_cast<const void*>(d.k16.data()) : d.k.data();
  k.token_stride = c.kv_heads * c.qk_dim;
  k.dtype = c.dtype;
  v.base = bf16 ? static_cast<const void*>(d.v16.data()) : d.v.data();
  v.token_stride = c.kv_heads * c.v_dim;
  v.dtype = c.dtype;
  ops::attention_forward(test::attention_params(shape(c), d.q.data(), k, v, out.data(), scale));
  return out;
}

class GenericAttention : public ::testing::TestWithParam<std::tuple<SimdLevel, Case>> {};

TEST_P(GenericAttention, MatchesReferenceAndScalarPath) {
  const auto [level, c] = GetParam();
  if (ops::supported_simd_level() < level)
    GTEST_SKIP() << "this CPU lacks " << ops::simd_level_name(level);
  const Data d(c);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.qk_dim));
  ops::set_simd_level(SimdLevel::kScalar);
  const auto scalar = run(c, d, scale);
  ops::set_simd_level(level);
  const auto out = run(c, d, scale);
  ops::set_simd_level(std::nullopt);
  EXPECT_LT(test::rel_error(out, reference(c, d, scale)), 3e-6);
  EXPECT_LT(test::rel_error(out, scalar), 3e-6);
}

const Case kCases[] = {
    {1, 300, 4, 4, 192, 128, false, DType::kF32},    // MHA decode, DeepSeek's naive head widths
    {9, 70, 4, 4, 192, 128, false, DType::kBF16},    // MHA prefill with history, bf16 cache
    {3, 200, 8, 2, 128, 128, false, DType::kF32},    // GQA
    {2, 129, 16, 1, 128, 128, false, DType::kBF16},  // MQA
    {4, 64, 3, 1, 43, 37, true, DType::kF32},        // latent, odd widths
    {2, 65, 5, 1, 40, 32, true, DType::kBF16},       // latent, bf16
    {33, 0, 2, 2, 24, 13, false, DType::kF32},       // causal prefill from empty, odd value width
};

std::string param_name(const ::testing::TestParamInfo<std::tuple<SimdLevel, Case>>& info) {
  return std::string(ops::simd_level_name(std::get<0>(info.param))) + "_" +
         case_name(std::get<1>(info.param));
}

// amx runs attention as avx512bf16 does: not a separate case.
constexpr SimdLevel kAttentionLevels[] = {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512,
                                          SimdLevel::kAvx512Bf16};
INSTANTIATE_TEST_SUITE_P(Levels, GenericAttention,
                         ::testing::Combine(::testing::ValuesIn(kAttentionLevels),
                                            ::testing::ValuesIn(kCases)),
                         param_name);

}  // namespace
}  // namespace mla
