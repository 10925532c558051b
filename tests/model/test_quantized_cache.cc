// The FP8 and int8 latent caches (mla/quantized_row.h): the e4m3 encoder against the decoder
// for every code, the 656-byte DeepSeek-V3.2 row, per-group error bounds, non-finite groups, the
// fused latent kernel reading quantized rows on every SIMD path (equal within rounding to the
// float32 kernel on the dequantized rows), the attention error against a float32 cache bounded
// by the error of the quantized numbers, and the page pool and layer plumbing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/dtype.h"
#include "mla/error.h"
#include "mla/layer.h"
#include "mla/paged_cache.h"
#include "mla/quantized_row.h"
#include "mla/weights.h"
#include "ops/cpu_features.h"
#include "ops/latent_attention.h"
#include "test_util.h"

namespace mla {
namespace {

using ops::SimdLevel;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Fp8E4m3, EncoderInvertsTheDecoderOnEveryCode) {
  for (int code = 0; code < 256; ++code) {
    const float value = fp8_e4m3_to_f32(static_cast<uint8_t>(code));
    if (std::isnan(value)) {
      EXPECT_EQ(f32_to_fp8_e4m3(value) & 0x7f, 0x7f);
      continue;
    }
    EXPECT_EQ(f32_to_fp8_e4m3(value), code) << value;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(1e6f), 0x7e);      // saturates at 448
  EXPECT_EQ(f32_to_fp8_e4m3(-1e6f), 0xfe);     // and -448
  EXPECT_EQ(f32_to_fp8_e4m3(1.0625f), 0x38);   // halfway 1 .. 1.125: to even (1.0)
  EXPECT_EQ(f32_to_fp8_e4m3(1.1875f), 0x3a);   // halfway 1.125 .. 1.25: to even (1.25)
  EXPECT_EQ(f32_to_fp8_e4m3(0x1p-10f), 0x00);  // half the smallest subnormal: to even (0)
  EXPECT_EQ(f32_to_fp8_e4m3(0x1.8p-10f), 0x01);
}

TEST(QuantizedRow, DeepSeekLayoutIs656Bytes) {
  EXPECT_EQ(quantized_row_bytes(512, 64), 656);
  EXPECT_EQ(quantized_row_rope_offset(512), 528);
  EXPECT_EQ(quantized_row_bytes(40, 8), 40 + 4 + 16);  // one partial group
  EXPECT_EQ(PagedKvPool::row_bytes_for(576, DType::kF8E4M3, 64), 656);
  EXPECT_EQ(PagedKvPool::row_bytes_for(576, DType::kBF16, 0), 1152);
  EXPECT_EQ(PagedKvPool(576, 4, 2, DType::kI8, 64).page_bytes(), 4 * 656);
}

// Per number: fp8 keeps 3 mantissa bits, so a scaled number at or above e4m3's smallest normal
// (2^-6) is off by at most 2^-4 of itself, one below it by half a subnormal step (2^-10 of the
// scale); int8 is off by at most half a step, scale / 2. The group's largest number sits at 448
// (127) and comes back to float rounding. The rope part is bf16-rounded, nothing more.
TEST(QuantizedRow, ErrorsStayWithinTheFormatsSteps) {
  const int64_t r = 300, dr = 20;  // groups of 128, 128, 44
  std::vector<float> x = test::random_normal(r + dr, 5);
  x[7] = 1e-7f;  // subnormal after scaling
  x[200] = 40.0f;
  for (DType dtype : {DType::kF8E4M3, DType::kI8}) {
    std::vector<unsigned char> row(static_cast<size_t>(quantized_row_bytes(r, dr)));
    quantize_row(x.data(), r, dr, dtype, row.data());
    std::vector<float> back(x.size());
    dequantize_row(row.data(), r, dr, dtype, back.data());
    for (int64_t g = 0; g * kQuantGroup < r; ++g) {
      const int64_t i0 = g * kQuantGroup, i1 = std::min(r, i0 + kQuantGroup);
      float amax = 0.0f;
      for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float scale = amax / (dtype == DType::kF8E4M3 ? 448.0f : 127.0f);
      for (int64_t i = i0; i < i1; ++i) {
        const double err = std::fabs(static_cast<double>(back[i]) - x[i]);
        const double bound = dtype == DType::kF8E4M3
                                 ? std::max(0x1p-4 * std::fabs(x[i]), 0x1p-10 * scale)
                                 : 0.5 * scale;
        EXPECT_LE(err, bound * (1 + 1e-5) + 1e-12) << dtype_name(dtype) << " number " << i;
        if (std::fabs(x[i]) == amax) {
          EXPECT_NEAR(back[i], x[i], 1e-6 * amax);
        }
      }
    }
    for (int64_t i = r; i < r + dr; ++i) EXPECT_EQ(back[i], bf16_to_f32(f32_to_bf16(x[i])));
  }
}

TEST(QuantizedRow, NonFiniteNumbersPoisonOnlyTheirGroup) {
  const int64_t r = 256, dr = 4;
  std::vector<float> x = test::random_normal(r + dr, 6);
  x[130] = NAN;
  x[3] = INFINITY;
  for (DType dtype : {DType::kF8E4M3, DType::kI8}) {
    std::vector<unsigned char> row(static_cast<size_t>(quantized_row_bytes(r, dr)));
    quantize_row(x.data(), r, dr, dtype, row.data());
    std::vector<float> back(x.size());
    dequantize_row(row.data(), r, dr, dtype, back.data());
    for (int64_t i = 0; i < r; ++i) EXPECT_FALSE(std::isfinite(back[i])) << i;
    for (int64_t i = r; i < r + dr; ++i) EXPECT_TRUE(std::isfinite(back[i]));
  }
  EXPECT_EQ(error_of([&] { quantize_row(x.data(), r, dr, DType::kBF16, nullptr); }),
            "quantize_row: dtype must be F8_E4M3 or I8, got BF16");
}

// A paged quantized cache of `keys` rows (R + Dr), page size 7, and its dequantized copy.
struct QuantCache {
  int64_t rank, rope, row_bytes;
  std::vector<float> original, dequantized;
  std::vector<unsigned char> bytes;
  std::vector<const void*> pages;
  static constexpr int64_t kPage = 7;

  QuantCache(int64_t keys, int64_t r, int64_t dr, DType dtype, uint64_t seed)
      : rank(r), rope(dr), row_bytes(quantized_row_bytes(r, dr)) {
    const int64_t w = r + dr;
    original = test::random_normal(static_cast<size_t>(keys * w), seed);
    dequantized.resize(original.size());
    const int64_t n_pages = (keys + kPage - 1) / kPage;
    bytes.assign(static_cast<size_t>(n_pages * kPage * row_bytes), 0xff);  // NaN-ish padding
    for (int64_t p = 0; p < n_pages; ++p) pages.push_back(bytes.data() + p * kPage * row_bytes);
    for (int64_t j = 0; j < keys; ++j) {
      unsigned char* row = bytes.data() + j * row_bytes;
      quantize_row(original.data() + j * w, r, dr, dtype, row);
      dequantize_row(row, r, dr, dtype, dequantized.data() + j * w);
    }
  }
};

ops::AttentionParams latent_params(const std::vector<float>& q, std::vector<float>& out,
                                   int64_t heads, int64_t queries, int64_t context_before,
                                   int64_t r, int64_t dr, ops::KvView view) {
  ops::AttentionParams p;
  p.q = q.data();
  p.q_token_stride = heads * (r + dr);
  p.q_head_stride = r + dr;
  p.k = view;
  p.v = view;
  p.out = out.data();
  p.out_token_stride = heads * r;
  p.out_head_stride = r;
  p.num_queries = queries;
  p.num_heads = heads;
  p.num_kv_heads = 1;
  p.qk_dim = r + dr;
  p.v_dim = r;
  p.context_before = context_before;
  p.scale = 1.0f / std::sqrt(192.0f);
  return p;
}

struct KernelCase {
  int64_t heads, rank, rope, queries, context_before;
};

class QuantizedLatentKernel
    : public ::testing::TestWithParam<std::tuple<SimdLevel, DType, KernelCase>> {};

// The kernel on quantized rows == the kernel on the same rows dequantized to a float32 cache:
// dequantizing in the tile loop changes nothing but where the conversion happens. At
// avx512bf16 the codes go through VDPBF16PS (exact in bf16, the scales applied in float32):
// within the bf16 products' tolerance (tests/ops/test_latent_attention.cc) of the float32
// kernel, and no farther from it than the same level's kernel on a bf16 cache of the
// dequantized rows (which rounds every number once more).
TEST_P(QuantizedLatentKernel, EqualsTheFloatKernelOnDequantizedRows) {
  const auto [level, dtype, c] = GetParam();
  if (ops::supported_simd_level() < level)
    GTEST_SKIP() << "this CPU lacks " << ops::simd_level_name(level);
  const int64_t keys = c.context_before + c.queries, w = c.rank + c.rope;
  QuantCache cache(keys, c.rank, c.rope, dtype, 21);
  const std::vector<float> q =
      test::random_normal(static_cast<size_t>(c.queries * c.heads * w), 22);
  std::vector<float> out_q(static_cast<size_t>(c.queries * c.heads * c.rank), NAN);
  std::vector<float> out_f = out_q;
  ops::set_simd_level(level);
  const ops::KvView quant =
      ops::KvView::paged(cache.pages.data(), QuantCache::kPage, cache.row_bytes, 0, dtype);
  const ops::AttentionParams pq =
      latent_params(q, out_q, c.heads, c.queries, c.context_before, c.rank, c.rope, quant);
  ops::latent_attention({&pq, 1});
  const ops::AttentionParams pf =
      latent_params(q, out_f, c.heads, c.queries, c.context_before, c.rank, c.rope,
                    ops::KvView::contiguous(cache.dequantized.data(), w));
  ops::latent_attention({&pf, 1});
  if (level != SimdLevel::kAvx512Bf16) {
    ops::set_simd_level(std::nullopt);
    EXPECT_LT(test::rel_error(out_q, out_f), 1e-6);
    return;
  }
  std::vector<uint16_t> rows_bf16(cache.dequantized.size());
  convert_from_f32(cache.dequantized.data(), rows_bf16.size(), DType::kBF16, rows_bf16.data());
  ops::KvView bf16_view = ops::KvView::contiguous(nullptr, w);
  bf16_view.base = rows_bf16.data();
  bf16_view.dtype = DType::kBF16;
  std::vector<float> out_b = out_q;
  const ops::AttentionParams pb =
      latent_params(q, out_b, c.heads, c.queries, c.context_before, c.rank, c.rope, bf16_view);
  ops::latent_attention({&pb, 1});
  ops::set_simd_level(std::nullopt);
  const double error = test::rel_error(out_q, out_f);
  EXPECT_LT(error, 1.5e-2);
  EXPECT_LE(error, test::rel_error(out_b, out_f));
}

const KernelCase kKernelCases[] = {
    {16, 512, 64, 1, 300},  // DeepSeek rows, decode over 4 tiles
    {4, 40, 8, 3, 100},     // one partial group, odd widths, short prefill with history
    {3, 200, 12, 1, 97},    // a vector straddling groups (200 = 128 + 72)
    {2, 33, 5, 2, 60},      // odd rank: avx512bf16 hands the item to the float32 kernel
};

INSTANTIATE_TEST_SUITE_P(Levels, QuantizedLatentKernel,
                         ::testing::Combine(::testing::Values(SimdLevel::kScalar, SimdLevel::kAvx2,
                                                              SimdLevel::kAvx512,
                                                              SimdLevel::kAvx512Bf16),
                                            ::testing::Values(DType::kF8E4M3, DType::kI8),
                                            ::testing::ValuesIn(kKernelCases)),
                         [](const auto& param_info) {
                           const KernelCase& c = std::get<2>(param_info.param);
                           return std::string(ops::simd_level_name(std::get<0>(param_info.param))) +
                                  "_" + std::string(dtype_name(std::get<1>(param_info.param))) +
                                  "_R" + std::to_string(c.rank) + "_ctx" +
                                  std::to_string(c.context_before);
                         });

// A NaN in the last key of a prefill makes its group's scale NaN: only the query that sees the
// key gets a non-finite output; the earlier ones (the key masked for them, in the same tile)
// stay equal to the float32 kernel's on the dequantized rows, on every SIMD level.
TEST(QuantizedLatentKernel, ANonFiniteMaskedKeyStaysOutOfEarlierQueries) {
  const int64_t heads = 4, r = 256, dr = 16, w = r + dr, queries = 3, before = 100;
  const int64_t keys = before + queries;
  for (SimdLevel level :
       {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512, SimdLevel::kAvx512Bf16}) {
    if (ops::supported_simd_level() < level) continue;
    for (DType dtype : {DType::kF8E4M3, DType::kI8}) {
      QuantCache cache(keys, r, dr, dtype, 31);
      const int64_t last = keys - 1;
      cache.original[static_cast<size_t>(last * w + 140)] = NAN;  // group 1
      unsigned char* row = cache.bytes.data() + last * cache.row_bytes;
      quantize_row(cache.original.data() + last * w, r, dr, dtype, row);
      dequantize_row(row, r, dr, dtype, cache.dequantized.data() + last * w);
      const std::vector<float> q =
          test::random_normal(static_cast<size_t>(queries * heads * w), 32);
      std::vector<float> out_q(static_cast<size_t>(queries * heads * r), 0.0f), out_f = out_q;
      ops::set_simd_level(level);
      const ops::AttentionParams pq = latent_params(
          q, out_q, heads, queries, before, r, dr,
          ops::KvView::paged(cache.pages.data(), QuantCache::kPage, cache.row_bytes, 0, dtype));
      ops::latent_attention({&pq, 1});
      const ops::AttentionParams pf =
          latent_params(q, out_f, heads, queries, before, r, dr,
                        ops::KvView::contiguous(cache.dequantized.data(), w));
      ops::latent_attention({&pf, 1});
      ops::set_simd_level(std::nullopt);
      const size_t seen_by_last = static_cast<size_t>((queries - 1) * heads * r);
      const std::vector<float> early_q(out_q.begin(),
                                       out_q.begin() + static_cast<long>(seen_by_last));
      const std::vector<float> early_f(out_f.begin(),
                                       out_f.begin() + static_cast<long>(seen_by_last));
      for (float v : early_q) ASSERT_TRUE(std::isfinite(v)) << ops::simd_level_name(level);
      EXPECT_LT(test::rel_error(early_q, early_f), level == SimdLevel::kAvx512Bf16 ? 1.5e-2 : 1e-6)
          << ops::simd_level_name(level) << " " << dtype_name(dtype);
      for (size_t i = seen_by_last; i < out_q.size(); ++i)
        ASSERT_FALSE(std::isfinite(out_q[i])) << ops::simd_level_name(level) << " " << i;
    }
  }
}

// Attention on the quantized cache against the float32 cache it was made from. With score
// errors |ds_j| <= d and value errors <= e (both measured from the data), softmax weights move
// by a factor within e^(+-2d), so |o^ - o| <= e + max|v| (e^(2d) - 1) per output number: the
// bound asserted. On DeepSeek's shape with unit-normal numbers the max relative error is also
// below 6% (fp8; e4m3 keeps 3 mantissa bits; measured 4.1%) and 2% (int8; 127 steps per
// group; measured 1.3%), the
// figures docs/performance.md quotes.
TEST(QuantizedLatentCache, AttentionErrorAgainstFloat32IsBounded) {
  const int64_t heads = 16, r = 512, dr = 64, w = r + dr, ctx = 255, keys = ctx + 1;
  const std::vector<float> q = test::random_normal(static_cast<size_t>(heads * w), 31);
  const float scale = 1.0f / std::sqrt(192.0f);
  for (DType dtype : {DType::kF8E4M3, DType::kI8}) {
    QuantCache cache(keys, r, dr, dtype, 32);
    std::vector<float> out_q(static_cast<size_t>(heads * r)), out_f = out_q;
    const ops::KvView quant =
        ops::KvView::paged(cache.pages.data(), QuantCache::kPage, cache.row_bytes, 0, dtype);
    const ops::AttentionParams pq = latent_params(q, out_q, heads, 1, ctx, r, dr, quant);
    ops::latent_attention({&pq, 1});
    const ops::AttentionParams pf = latent_params(
        q, out_f, heads, 1, ctx, r, dr, ops::KvView::contiguous(cache.original.data(), w));
    ops::latent_attention({&pf, 1});
    double d = 0, e = 0, vmax = 0;
    for (int64_t j = 0; j < keys; ++j) {
      for (int64_t i = 0; i < r; ++i) {
        e = std::max(e, std::fabs(static_cast<double>(cache.dequantized[j * w + i]) -
                                  cache.original[j * w + i]));
        vmax = std::max(vmax, static_cast<double>(std::fabs(cache.original[j * w + i])));
      }
      for (int64_t h = 0; h < heads; ++h) {
        double ds = 0;
        for (int64_t i = 0; i < w; ++i)
          ds += static_cast<double>(q[h * w + i]) *
                (cache.dequantized[j * w + i] - cache.original[j * w + i]);
        d = std::max(d, std::fabs(ds) * scale);
      }
    }
    const double bound = e + vmax * (std::exp(2 * d) - 1);
    double worst = 0;
    for (size_t i = 0; i < out_q.size(); ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(out_q[i]) - out_f[i]));
    EXPECT_LE(worst, bound * 1.001 + 1e-6) << dtype_name(dtype);
    const double rel = test::rel_error(out_q, out_f);
    EXPECT_LT(rel, dtype == DType::kF8E4M3 ? 0.06 : 0.02) << dtype_name(dtype);
    RecordProperty(std::string(dtype_name(dtype)) + "_rel_error", std::to_string(rel));
    std::printf("%s: max |o^ - o| = %.4g (bound %.4g), relative %.4g\n",
                std::string(dtype_name(dtype)).c_str(), worst, bound, rel);
  }
}

// The layer writes quantized rows through the pool and reads them with the fused kernel;
// decode after prefill stays close to the float32 pool's outputs. Other paths refuse them.
TEST(QuantizedLatentCache, LayerDecodesThroughAQuantizedPool) {
  const MlaConfig c = preset_config("tiny");
  MlaLayer layer(c, MlaWeights::random(c, 3));
  const int64_t steps = 5, d = c.hidden_size, width = c.latent_dim();
  const std::vector<float> x = test::random_normal(static_cast<size_t>(steps * d), 41);
  std::vector<float> y_f(x.size()), y_q(x.size());
  const auto run = [&](DType dtype, std::vector<float>& y) {
    PagedKvPool pool(width, 4, 4, dtype, dtype == DType::kF32 ? 0 : c.qk_rope_head_dim);
    std::vector<PagedKvPool::SeqId> seq{pool.add_sequence()};
    std::vector<int64_t> prompt{3}, one{1};
    layer.forward({x.data(), static_cast<size_t>(3 * d)}, seq, prompt, pool,
                  AttentionPath::kAbsorbed, {y.data(), static_cast<size_t>(3 * d)});
    for (int64_t t = 3; t < steps; ++t)
      layer.forward({x.data() + t * d, static_cast<size_t>(d)}, seq, one, pool,
                    AttentionPath::kAbsorbed, {y.data() + t * d, static_cast<size_t>(d)});
  };
  run(DType::kF32, y_f);
  for (DType dtype : {DType::kF8E4M3, DType::kI8}) {
    run(dtype, y_q);
    EXPECT_LT(test::rel_error(y_q, y_f), dtype == DType::kF8E4M3 ? 0.1 : 0.03) << dtype_name(dtype);
  }
  PagedKvPool naive(layer.paged_token_width(AttentionPath::kNaive), 4, 4, DType::kI8,
                    c.qk_rope_head_dim);
  std::vector<PagedKvPool::SeqId> seq{naive.add_sequence()};
  std::vector<int64_t> one{1};
  EXPECT_EQ(error_of([&] {
              layer.forward({x.data(), static_cast<size_t>(d)}, seq, one, naive,
                            AttentionPath::kNaive, {y_q.data(), static_cast<size_t>(d)});
            }),
            "forward: an I8 page pool serves the dense absorbed path only, with the rope part (" +
                std::to_string(c.qk_rope_head_dim) + " numbers, pool has " +
                std::to_string(c.qk_rope_head_dim) + ") kept in bf16");
}

}  // namespace
}  // namespace mla
