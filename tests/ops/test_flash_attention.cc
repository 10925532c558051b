// The tiled (flash) attention kernel in the absorbed-MLA layout against a two-pass softmax in
// double precision: decode and prefill, 1 to 128 heads, contexts across tile and page edges, paged
// (shuffled pages, NaN in free slots) and contiguous, F32 and BF16 caches, split-K forced on and
// off.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "attention_reference.h"
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

test::AttentionShape shape(const Case& c) {
  return test::latent_shape(c.heads, c.rank, c.rope, c.queries, c.context_before);
}

// out (T, H, R) in double from rows (L, R + Dr) whose first R entries are the value.
std::vector<float> reference(const Case& c, const std::vector<float>& q,
                             const std::vector<float>& rows, float scale) {
  return test::attention_reference(shape(c), q.data(), rows.data(), nullptr, scale);
}

ops::AttentionParams latent_params(const Case& c, const float* q, ops::KvView view, float* out,
                                   float scale) {
  return test::attention_params(shape(c), q, view, view, out, scale);
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
        test::ShuffledPages pages;
        ops::KvView view = ops::KvView::contiguous(rows.data(), w);
        if (page_size > 0) {
          pages = test::shuffled_pages(rows, keys, w, page_size, dtype, 100 + page_size);
          view = pages.view();
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
