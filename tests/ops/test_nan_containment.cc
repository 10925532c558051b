// A NaN or infinity in the cache row of token t may only reach outputs of tokens that attend to
// it (t and later, under the causal mask). Masked keys have probability exactly 0, but 0 x NaN
// is NaN: a kernel that multiplies the masked part of a diagonal tile in would poison every
// earlier token of the tile. Checked for the tiled GEMM kernel (latent and grouped layouts) and
// the fused latent kernel on every SIMD path the CPU has, F32 and BF16 caches.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "mla/dtype.h"
#include "ops/cpu_features.h"
#include "ops/flash_attention.h"
#include "ops/latent_attention.h"
#include "test_util.h"

namespace mla {
namespace {

using ops::SimdLevel;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// A causal prefill of `queries` tokens after `context` cached ones: long enough to span a
// 96-key latent tile and several query blocks, short enough to share one 256-key GEMM tile.
struct Shape {
  int64_t heads = 4, kv_heads = 1, qk_dim = 48, v_dim = 40, queries = 150, context = 7;
  bool latent() const { return kv_heads == 1 && v_dim <= qk_dim; }
};

// Keys (L, G, qk_dim) and, for grouped layouts, values (L, G, v_dim); latent: value = key prefix.
struct Inputs {
  std::vector<float> q, k, v;
  std::vector<uint16_t> k_bf16;
};

Inputs make_inputs(const Shape& s) {
  const int64_t keys = s.context + s.queries;
  Inputs in;
  in.q = test::random_normal(s.queries * s.heads * s.qk_dim, 1);
  in.k = test::random_normal(keys * s.kv_heads * s.qk_dim, 2);
  if (!s.latent()) in.v = test::random_normal(keys * s.kv_heads * s.v_dim, 3);
  return in;
}

ops::AttentionParams params(const Shape& s, Inputs& in, DType dtype, float* out) {
  ops::AttentionParams p;
  p.q = in.q.data();
  p.q_token_stride = s.heads * s.qk_dim;
  p.q_head_stride = s.qk_dim;
  if (dtype == DType::kBF16) {
    in.k_bf16.resize(in.k.size());
    convert_from_f32(in.k.data(), in.k.size(), DType::kBF16, in.k_bf16.data());
    p.k.base = in.k_bf16.data();
    p.k.token_stride = s.kv_heads * s.qk_dim;
    p.k.dtype = DType::kBF16;
  } else {
    p.k = ops::KvView::contiguous(in.k.data(), s.kv_heads * s.qk_dim);
  }
  p.k_head_stride = s.qk_dim;
  p.v = s.latent() ? p.k : ops::KvView::contiguous(in.v.data(), s.kv_heads * s.v_dim);
  p.v_head_stride = s.latent() ? s.qk_dim : s.v_dim;
  p.out = out;
  p.out_token_stride = s.heads * s.v_dim;
  p.out_head_stride = s.v_dim;
  p.num_queries = s.queries;
  p.num_heads = s.heads;
  p.num_kv_heads = s.kv_heads;
  p.qk_dim = s.qk_dim;
  p.v_dim = s.v_dim;
  p.context_before = s.context;
  p.scale = 1.0f / std::sqrt(static_cast<float>(s.qk_dim));
  return p;
}

enum class Kernel { kFlash, kLatent };

std::vector<float> run(Kernel kernel, const Shape& s, Inputs in, DType dtype, int64_t split) {
  std::vector<float> out(s.queries * s.heads * s.v_dim, -1.0f);
  const ops::AttentionParams p[] = {params(s, in, dtype, out.data())};
  if (kernel == Kernel::kFlash) {
    ops::FlashWorkspace ws;
    ws.force_split = split;
    ops::flash_attention(p, ws);
  } else {
    ops::LatentWorkspace ws;
    ws.force_split = split;
    ops::latent_attention(p, ws);
  }
  return out;
}

bool all_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

// Poisons the cache row of query token `bad` (whole key row, or one value entry), then checks
// tokens before it against the clean run and tokens from it on for non-finite outputs.
void check_containment(Kernel kernel, const Shape& s, DType dtype, int64_t split,
                       const std::string& what) {
  const int64_t row = s.heads * s.v_dim;
  const Inputs clean = make_inputs(s);
  const std::vector<float> expected = run(kernel, s, clean, dtype, split);
  ASSERT_TRUE(all_finite(expected.data(), static_cast<int64_t>(expected.size()))) << what;
  for (int64_t bad : {int64_t{0}, int64_t{1}, int64_t{60}, int64_t{97}, s.queries - 1}) {
    for (float poison : {kNaN, kInf}) {
      Inputs in = clean;
      const int64_t key = s.context + bad;
      const bool whole_row = std::isnan(poison);
      const int64_t width = s.kv_heads * s.qk_dim;
      if (whole_row) {
        for (int64_t i = 0; i < width; ++i) in.k[key * width + i] = poison;
        for (int64_t i = 0; i < s.kv_heads * s.v_dim && !s.latent(); ++i)
          in.v[key * s.kv_heads * s.v_dim + i] = poison;
      } else if (s.latent()) {
        in.k[key * width + 3] = poison;  // a value entry
      } else {
        in.v[key * s.kv_heads * s.v_dim + 3] = poison;
      }
      const std::vector<float> got = run(kernel, s, in, dtype, split);
      const std::string where = what + ", bad token " + std::to_string(bad) + ", " +
                                (whole_row ? "NaN row" : "inf value");
      const std::vector<float> before(got.begin(), got.begin() + bad * row);
      const std::vector<float> want(expected.begin(), expected.begin() + bad * row);
      EXPECT_TRUE(all_finite(before.data(), bad * row)) << where;
      if (bad > 0) {
        EXPECT_LT(test::rel_error(before, want), 1e-6) << where;
      }
      for (int64_t t = bad; t < s.queries; ++t) {
        // Some head of the token sees the poison (grouped: the heads of KV head 0 at least).
        ASSERT_FALSE(all_finite(got.data() + t * row, row)) << where << ", token " << t;
      }
    }
  }
}

// With no cached context, token 0's only key is itself: a poisoned token 0 then has nothing but
// NaN scores, the case where a max that drops NaN would leave the row looking empty.
Shape with_context(Shape s, int64_t context) {
  s.context = context;
  return s;
}

std::string label(const std::string& kernel, DType dtype, int64_t split, int64_t context) {
  return kernel + " " + std::string(dtype_name(dtype)) + " split " + std::to_string(split) +
         " context " + std::to_string(context);
}

TEST(NanContainment, FlashKernelLatentLayout) {
  for (int64_t context : {0, 7}) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      for (int64_t split : {0, 3}) {
        check_containment(Kernel::kFlash, with_context(Shape{}, context), dtype, split,
                          label("flash latent", dtype, split, context));
      }
    }
  }
}

TEST(NanContainment, FlashKernelGroupedLayout) {
  Shape s;
  s.kv_heads = 2;
  s.qk_dim = 24;
  s.v_dim = 16;
  for (int64_t context : {0, 7}) {
    for (int64_t split : {0, 3}) {
      check_containment(Kernel::kFlash, with_context(s, context), DType::kF32, split,
                        label("flash grouped", DType::kF32, split, context));
    }
  }
}

TEST(NanContainment, FusedLatentKernelEverySimdPath) {
  for (SimdLevel level :
       {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512, SimdLevel::kAvx512Bf16}) {
    if (ops::supported_simd_level() < level) continue;  // this CPU lacks it
    ops::set_simd_level(level);
    for (int64_t context : {0, 7}) {
      for (DType dtype : {DType::kF32, DType::kBF16}) {
        for (int64_t split : {0, 2}) {
          check_containment(Kernel::kLatent, with_context(Shape{}, context), dtype, split,
                            label(std::string(ops::simd_level_name(level)), dtype, split, context));
        }
      }
    }
  }
  ops::set_simd_level(std::nullopt);
}

}  // namespace
}  // namespace mla
