// The streaming attention kernel against a plain two-pass softmax in double precision, over
// layouts (MHA, GQA, MQA, latent with value = key prefix) and lengths around the tile size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "ops/attention.h"
#include "ops/flash_attention.h"
#include "test_util.h"

namespace mla {
namespace {

struct Case {
  int64_t queries, context_before, heads, kv_heads, qk_dim, v_dim;
  bool value_is_key_prefix;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "T" << c.queries << "_ctx" << c.context_before << "_H" << c.heads << "_G" << c.kv_heads
      << "_qk" << c.qk_dim << "_v" << c.v_dim << (c.value_is_key_prefix ? "_latent" : "");
}

// out[t][h] = softmax_j(scale q.k_j) v_j over j <= context_before + t, computed in double.
std::vector<float> reference(const Case& c, const std::vector<float>& q,
                             const std::vector<float>& k, const std::vector<float>& v,
                             float scale) {
  const int64_t keys = c.context_before + c.queries, group = c.heads / c.kv_heads;
  const int64_t v_width = c.value_is_key_prefix ? c.qk_dim : c.v_dim;
  std::vector<float> out(c.queries * c.heads * c.v_dim);
  for (int64_t t = 0; t < c.queries; ++t) {
    for (int64_t h = 0; h < c.heads; ++h) {
      const int64_t g = h / group, n = c.context_before + t + 1;
      std::vector<double> s(n);
      double mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t i = 0; i < c.qk_dim; ++i) {
          dot += static_cast<double>(q[(t * c.heads + h) * c.qk_dim + i]) *
                 k[(j * c.kv_heads + g) * c.qk_dim + i];
        }
        s[j] = scale * dot;
        mx = std::max(mx, s[j]);
      }
      double total = 0;
      for (double& e : s) total += (e = std::exp(e - mx));
      for (int64_t i = 0; i < c.v_dim; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) {
          const float val = c.value_is_key_prefix ? k[(j * c.kv_heads + g) * c.qk_dim + i]
                                                  : v[(j * c.kv_heads + g) * v_width + i];
          acc += s[j] * val;
        }
        out[(t * c.heads + h) * c.v_dim + i] = static_cast<float>(acc / total);
      }
    }
  }
  (void)keys;
  return out;
}

// Copies a contiguous (tokens, width) buffer into pages of `page_size` tokens stored in shuffled
// order, with NaN in every slot past the last token: a kernel that reads outside the view fails.
struct PagedCopy {
  std::vector<std::vector<float>> storage;
  std::vector<const void*> table;
  ops::KvView view;
  PagedCopy(const std::vector<float>& data, int64_t tokens, int64_t width, int64_t page_size,
            uint64_t seed) {
    const int64_t pages = (tokens + page_size - 1) / page_size;
    storage.assign(pages, std::vector<float>(page_size * width, NAN));
    std::vector<int64_t> order(pages);
    for (int64_t i = 0; i < pages; ++i) order[i] = i;
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    table.resize(pages);
    for (int64_t p = 0; p < pages; ++p) {
      auto& page = storage[order[p]];
      for (int64_t t = p * page_size; t < std::min(tokens, (p + 1) * page_size); ++t) {
        std::copy_n(data.begin() + t * width, width, page.begin() + (t - p * page_size) * width);
      }
      table[p] = page.data();
    }
    view.pages = table.data();
    view.page_size = page_size;
    view.token_stride = width;
  }
};

class AttentionKernel : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionKernel, PagedEqualsContiguous) {
  const Case c = GetParam();
  const int64_t keys = c.context_before + c.queries;
  auto q = test::random_normal(c.queries * c.heads * c.qk_dim, 1);
  auto k = test::random_normal(keys * c.kv_heads * c.qk_dim, 2);
  auto v = test::random_normal(keys * c.kv_heads * c.v_dim, 3);
  auto run = [&](ops::KvView kv, ops::KvView vv, bool flash) {
    std::vector<float> out(c.queries * c.heads * c.v_dim, NAN);
    ops::AttentionParams p;
    p.q = q.data();
    p.q_token_stride = c.heads * c.qk_dim;
    p.q_head_stride = c.qk_dim;
    p.k = kv;
    p.k_head_stride = c.qk_dim;
    p.v = c.value_is_key_prefix ? kv : vv;
    p.v_head_stride = c.value_is_key_prefix ? c.qk_dim : c.v_dim;
    p.out = out.data();
    p.out_token_stride = c.heads * c.v_dim;
    p.out_head_stride = c.v_dim;
    p.num_queries = c.queries;
    p.num_heads = c.heads;
    p.num_kv_heads = c.kv_heads;
    p.qk_dim = c.qk_dim;
    p.v_dim = c.v_dim;
    p.context_before = c.context_before;
    p.scale = 0.25f;
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
    PagedCopy pk(k, keys, c.kv_heads * c.qk_dim, page_size, 10 + page_size);
    PagedCopy pv(v, keys, c.kv_heads * c.v_dim, page_size, 20 + page_size);
    auto paged = run(pk.view, pv.view, false);
    EXPECT_LT(test::rel_error(paged, contiguous), 1e-6) << "page_size " << page_size;
    // The tiled kernel on the same paged views agrees with the scalar reference kernel.
    auto flash = run(pk.view, pv.view, true);
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
  ops::AttentionParams p;
  p.q = q.data();
  p.q_token_stride = c.heads * c.qk_dim;
  p.q_head_stride = c.qk_dim;
  p.k = ops::KvView::contiguous(k.data(), c.kv_heads * c.qk_dim);
  p.k_head_stride = c.qk_dim;
  p.v = c.value_is_key_prefix ? p.k : ops::KvView::contiguous(v.data(), c.kv_heads * c.v_dim);
  p.v_head_stride = c.value_is_key_prefix ? c.qk_dim : c.v_dim;
  p.out = out.data();
  p.out_token_stride = c.heads * c.v_dim;
  p.out_head_stride = c.v_dim;
  p.num_queries = c.queries;
  p.num_heads = c.heads;
  p.num_kv_heads = c.kv_heads;
  p.qk_dim = c.qk_dim;
  p.v_dim = c.v_dim;
  p.context_before = c.context_before;
  p.scale = scale;
  ops::attention_forward(p);
  EXPECT_LT(test::rel_error(out, reference(c, q, k, v, scale)), 1e-5);
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
