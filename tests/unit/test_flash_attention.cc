// The tiled (flash) attention kernel in the absorbed-MLA layout against a two-pass softmax in
// double precision: decode and prefill, 1 to 128 heads, contexts across tile and page edges, paged
// (shuffled pages, NaN in free slots) and contiguous, F32 and BF16 caches, split-K forced on and
// off.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "mla/dtype.h"
#include "ops/flash_attention.h"
#include "test_util.h"

namespace mla {
namespace {

struct Case {
  int64_t heads, rank, rope, queries, context_before;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "H" << c.heads << "_R" << c.rank << "_Dr" << c.rope << "_T" << c.queries << "_ctx"
      << c.context_before;
}

// out (T, H, R) in double from rows (L, R + Dr) whose first R entries are the value.
std::vector<float> reference(const Case& c, const std::vector<float>& q,
                             const std::vector<float>& rows, float scale) {
  const int64_t w = c.rank + c.rope;
  std::vector<float> out(c.queries * c.heads * c.rank);
  for (int64_t t = 0; t < c.queries; ++t) {
    const int64_t n = c.context_before + t + 1;
    for (int64_t h = 0; h < c.heads; ++h) {
      const float* qh = q.data() + (t * c.heads + h) * w;
      std::vector<double> s(n);
      double mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t i = 0; i < w; ++i) dot += static_cast<double>(qh[i]) * rows[j * w + i];
        s[j] = scale * dot;
        mx = std::max(mx, s[j]);
      }
      double total = 0;
      for (double& e : s) total += (e = std::exp(e - mx));
      for (int64_t i = 0; i < c.rank; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) acc += s[j] * rows[j * w + i];
        out[(t * c.heads + h) * c.rank + i] = static_cast<float>(acc / total);
      }
    }
  }
  return out;
}

struct PagedRows {
  std::vector<std::vector<uint16_t>> bf16_pages;
  std::vector<std::vector<float>> f32_pages;
  std::vector<const void*> table;
};

// Stores rows in shuffled pages of `page_size` (NaN or its bf16 pattern in unused slots).
PagedRows make_pages(const std::vector<float>& rows, int64_t tokens, int64_t width,
                     int64_t page_size, DType dtype, uint64_t seed) {
  PagedRows p;
  const int64_t pages = (tokens + page_size - 1) / page_size;
  std::vector<int64_t> order(pages);
  for (int64_t i = 0; i < pages; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  if (dtype == DType::kBF16) {
    p.bf16_pages.assign(pages, std::vector<uint16_t>(page_size * width, 0x7fc0));
  } else {
    p.f32_pages.assign(pages, std::vector<float>(page_size * width, NAN));
  }
  p.table.resize(pages);
  for (int64_t pg = 0; pg < pages; ++pg) {
    const int64_t storage = order[pg];
    for (int64_t t = pg * page_size; t < std::min(tokens, (pg + 1) * page_size); ++t) {
      const int64_t slot = (t - pg * page_size) * width;
      if (dtype == DType::kBF16) {
        convert_from_f32(rows.data() + t * width, width, DType::kBF16,
                         p.bf16_pages[storage].data() + slot);
      } else {
        std::copy_n(rows.begin() + t * width, width, p.f32_pages[storage].begin() + slot);
      }
    }
    p.table[pg] = dtype == DType::kBF16 ? static_cast<const void*>(p.bf16_pages[storage].data())
                                        : static_cast<const void*>(p.f32_pages[storage].data());
  }
  return p;
}

ops::AttentionParams latent_params(const Case& c, const float* q, ops::KvView view, float* out,
                                   float scale) {
  ops::AttentionParams p;
  p.q = q;
  p.q_token_stride = c.heads * (c.rank + c.rope);
  p.q_head_stride = c.rank + c.rope;
  p.k = view;
  p.v = view;  // the value is the first R entries of each row
  p.out = out;
  p.out_token_stride = c.heads * c.rank;
  p.out_head_stride = c.rank;
  p.num_queries = c.queries;
  p.num_heads = c.heads;
  p.num_kv_heads = 1;
  p.qk_dim = c.rank + c.rope;
  p.v_dim = c.rank;
  p.context_before = c.context_before;
  p.scale = scale;
  return p;
}

class LatentAttention : public ::testing::TestWithParam<Case> {};

TEST_P(LatentAttention, MatchesDoubleReferenceInEveryLayout) {
  const Case c = GetParam();
  const int64_t w = c.rank + c.rope, keys = c.context_before + c.queries;
  const float scale = 1.0f / std::sqrt(static_cast<float>(w));
  auto q = test::random_normal(c.queries * c.heads * w, 1);
  auto rows = test::random_normal(keys * w, 2);
  const auto expected = reference(c, q, rows, scale);
  std::vector<float> rows_bf16(rows.size());  // what a bf16 cache holds
  for (size_t i = 0; i < rows.size(); ++i) rows_bf16[i] = bf16_to_f32(f32_to_bf16(rows[i]));
  const auto expected_bf16 = reference(c, q, rows_bf16, scale);

  for (int64_t split : {0, 1, 3}) {
    for (int64_t page_size : {0, 1, 7, 64}) {
      for (DType dtype : {DType::kF32, DType::kBF16}) {
        if (page_size == 0 && dtype == DType::kBF16) continue;
        PagedRows pages;
        ops::KvView view = ops::KvView::contiguous(rows.data(), w);
        if (page_size > 0) {
          pages = make_pages(rows, keys, w, page_size, dtype, 100 + page_size);
          view = ops::KvView::paged(pages.table.data(), page_size, w, 0, dtype);
        }
        std::vector<float> out(expected.size(), NAN);
        const ops::AttentionParams params[] = {latent_params(c, q.data(), view, out.data(), scale)};
        ops::FlashWorkspace ws;
        ws.force_split = split;
        ops::flash_attention(params, ws);
        const auto& want = dtype == DType::kBF16 ? expected_bf16 : expected;
        EXPECT_LT(test::rel_error(out, want), 2e-6)
            << "split " << split << " page " << page_size << " " << dtype_name(dtype);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LatentAttention,
                         ::testing::Values(Case{1, 16, 8, 1, 0},    // single key
                                           Case{3, 40, 8, 1, 300},  // odd heads, crosses a 256 tile
                                           Case{16, 64, 16, 1, 700},  // decode, split-K territory
                                           Case{16, 32, 8, 37, 20},   // causal prefill with history
                                           Case{5, 24, 8, 130, 0},  // prefill, several query blocks
                                           Case{128, 32, 8, 2,
                                                90}),  // many heads: one token per block
                         [](const auto& param_info) {
                           std::ostringstream name;
                           PrintTo(param_info.param, &name);
                           return name.str();
                         });

TEST(LatentAttentionBatch, SequencesOfDifferentLengthsInOneCall) {
  const Case a{4, 32, 8, 1, 900}, b{4, 32, 8, 6, 3};
  const int64_t w = 40;
  const float scale = 0.2f;
  auto qa = test::random_normal(a.queries * 4 * w, 3),
       qb = test::random_normal(b.queries * 4 * w, 4);
  auto ra = test::random_normal((a.context_before + 1) * w, 5),
       rb = test::random_normal((b.context_before + 6) * w, 6);
  std::vector<float> oa(a.queries * 4 * 32), ob(b.queries * 4 * 32);
  const ops::AttentionParams params[] = {
      latent_params(a, qa.data(), ops::KvView::contiguous(ra.data(), w), oa.data(), scale),
      latent_params(b, qb.data(), ops::KvView::contiguous(rb.data(), w), ob.data(), scale)};
  ops::FlashWorkspace ws;
  ops::flash_attention(params, ws);
  EXPECT_LT(test::rel_error(oa, reference(a, qa, ra, scale)), 2e-6);
  EXPECT_LT(test::rel_error(ob, reference(b, qb, rb, scale)), 2e-6);
}

}  // namespace
}  // namespace mla
