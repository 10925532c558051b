// The streaming attention kernel against a plain two-pass softmax in double precision, over
// layouts (MHA, GQA, MQA, latent with value = key prefix) and lengths around the tile size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "attention_reference.h"
#include "ops/attention.h"
#include "ops/flash_attention.h"
#include "test_util.h"

namespace mla {
namespace {

using Case = test::AttentionShape;

class AttentionKernel : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionKernel, PagedEqualsContiguous) {
  const Case c = GetParam();
  const int64_t keys = c.context_before + c.queries;
  auto q = test::random_normal(c.queries * c.heads * c.qk_dim, 1);
  auto k = test::random_normal(keys * c.kv_heads * c.qk_dim, 2);
  auto v = test::random_normal(keys * c.kv_heads * c.v_dim, 3);
  auto run = [&](ops::KvView kv, ops::KvView vv, bool flash) {
    std::vector<float> out(c.queries * c.heads * c.v_dim, NAN);
    ops::AttentionParams p = test::attention_params(c, q.data(), kv, vv, out.data(), 0.25f);
    if (flash) {
      ops::FlashWorkspace ws;
      ws.force_split = c.context_before > 100 ? 2 : 0;
      ops::flash_attention({&p, 1}, ws);
    } else {
      ops::attention_forward(p);
    }
    return out;
  };
  auto contiguous = run(ops::KvView::contiguous(k.data(), c.kv_heads * c.qk_dim),
                        ops::KvView::contiguous(v.data(), c.kv_heads * c.v_dim), false);
  for (int64_t page_size : {1, 7, 16, 64}) {
    const auto pk = test::shuffled_pages(k, keys, c.kv_heads * c.qk_dim, page_size, DType::kF32,
                                         10 + page_size);
    const auto pv =
        test::shuffled_pages(v, keys, c.kv_heads * c.v_dim, page_size, DType::kF32, 20 + page_size);
    auto paged = run(pk.view(), pv.view(), false);
    EXPECT_LT(test::rel_error(paged, contiguous), 1e-6) << "page_size " << page_size;
    // The tiled kernel on the same paged views agrees with the scalar reference kernel.
    auto flash = run(pk.view(), pv.view(), true);
    EXPECT_LT(test::rel_error(flash, contiguous), 2e-6) << "flash, page_size " << page_size;
  }
}

TEST_P(AttentionKernel, MatchesTwoPassSoftmax) {
  const Case c = GetParam();
  const int64_t keys = c.context_before + c.queries;
  auto q = test::random_normal(c.queries * c.heads * c.qk_dim, 1);
  auto k = test::random_normal(keys * c.kv_heads * c.qk_dim, 2);
  auto v = test::random_normal(keys * c.kv_heads * c.v_dim, 3);
  const float scale = 0.3f;
  std::vector<float> out(c.queries * c.heads * c.v_dim, NAN);
  const ops::AttentionParams p = test::attention_params(
      c, q.data(), ops::KvView::contiguous(k.data(), c.kv_heads * c.qk_dim),
      ops::KvView::contiguous(v.data(), c.kv_heads * c.v_dim), out.data(), scale);
  ops::attention_forward(p);
  EXPECT_LT(test::rel_error(out, test::attention_reference(c, q.data(), k.data(), v.data(), scale)),
            1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, AttentionKernel,
    ::testing::Values(Case{1, 0, 4, 4, 24, 16, false},     // single token
                      Case{5, 60, 4, 4, 24, 16, false},    // MHA crossing a tile edge
                      Case{3, 200, 8, 2, 32, 8, false},    // GQA
                      Case{2, 129, 16, 1, 32, 32, false},  // MQA, odd length
                      Case{4, 64, 3, 1, 40, 32, true},     // latent: value = first 32 of the key
                      Case{70, 0, 5, 1, 24, 16, true}));   // causal prefill across tiles

}  // namespace
}  // namespace mla
