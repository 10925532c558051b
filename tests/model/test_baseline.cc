// MHA/GQA/MQA baselines: GQA equals MHA with each group's K/V weights repeated per head, a single
// token's output is W_O W_V x (softmax weight 1), batched steps equal sequences alone.
#include <gtest/gtest.h>

#include <vector>

#include "mla/error.h"
#include "mla/gqa_layer.h"
#include "test_util.h"

namespace mla {
namespace {

using Seq = PagedKvPool::SeqId;

GqaConfig small(int64_t kv_heads) {
  GqaConfig c;
  c.hidden_size = 48;
  c.num_heads = 6;
  c.num_kv_heads = kv_heads;
  c.head_dim = 16;
  c.rope_dim = 8;
  return c;
}

std::vector<float> run_prefill(GqaLayer& layer, const std::vector<float>& x, int64_t seq,
                               int64_t page_size = 16) {
  PagedKvPool pool(layer.paged_token_width(), page_size, 64);
  const Seq ids[] = {pool.add_sequence()};
  const int64_t n[] = {seq};
  std::vector<float> y(x.size());
  layer.forward(x, ids, n, pool, y);
  return y;
}

TEST(Baseline, GqaEqualsMhaWithRepeatedKvWeights) {
  for (int64_t groups : {1, 2, 3}) {
    const GqaConfig gc = small(groups);
    GqaWeights gw = GqaWeights::random(gc, 7);
    GqaConfig mc = small(6);
    GqaWeights mw = gw;
    const int64_t per_group = 6 / groups, dh = 16, d = 48;
    mw.wk.clear();
    mw.wv.clear();
    for (int64_t h = 0; h < 6; ++h) {
      const int64_t g = h / per_group;
      mw.wk.insert(mw.wk.end(), gw.wk.begin() + g * dh * d, gw.wk.begin() + (g + 1) * dh * d);
      mw.wv.insert(mw.wv.end(), gw.wv.begin() + g * dh * d, gw.wv.begin() + (g + 1) * dh * d);
    }
    GqaLayer gqa(gc, gw), mha(mc, mw);
    auto x = test::random_normal(20 * d, 8);
    EXPECT_LT(test::rel_error(run_prefill(gqa, x, 20), run_prefill(mha, x, 20)), 1e-6)
        << "groups " << groups;
  }
}

TEST(Baseline, BorrowedWeightsEqualOwnedAndShapesAreChecked) {
  const GqaConfig c = small(2);
  GqaWeights w = GqaWeights::random(c, 5);
  GqaWeightView view;
  for_each_tensor_pair(c, view, w,
                       [](const std::string&, const std::vector<int64_t>&, const float*& ptr,
                          const std::vector<float>& data) { ptr = data.data(); });
  GqaLayer owned(c, w), borrowed(c, view);
  auto x = test::random_normal(9 * 48, 6);
  EXPECT_EQ(run_prefill(borrowed, x, 9), run_prefill(owned, x, 9));
  w.wk.pop_back();
  try {
    GqaLayer bad(c, w);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "gqa weights: k_proj.weight: expected 1536 values, got 1535");
  }
  view.wo = nullptr;
  try {
    GqaLayer bad(c, view);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "gqa weights: o_proj.weight: not set");
  }
}

TEST(Baseline, SingleTokenIsOutputOfValue) {
  const GqaConfig c = small(2);
  GqaWeights w = GqaWeights::random(c, 9);
  GqaLayer layer(c, w);
  auto x = test::random_normal(48, 10);
  auto y = run_prefill(layer, x, 1);
  // o_h = v_{g(h)} = W_V[g] x; y = W_O o.
  std::vector<double> v(2 * 16, 0.0), o(6 * 16), expected(48, 0.0);
  for (int64_t i = 0; i < 32; ++i) {
    for (int64_t j = 0; j < 48; ++j) v[i] += static_cast<double>(w.wv[i * 48 + j]) * x[j];
  }
  for (int64_t h = 0; h < 6; ++h) {
    for (int64_t i = 0; i < 16; ++i) o[h * 16 + i] = v[(h / 3) * 16 + i];
  }
  std::vector<float> e(48);
  for (int64_t i = 0; i < 48; ++i) {
    double s = 0;
    for (int64_t j = 0; j < 96; ++j) s += static_cast<double>(w.wo[i * 96 + j]) * o[j];
    e[i] = static_cast<float>(s);
  }
  EXPECT_LT(test::rel_error(y, e), 1e-5);
}

TEST(Baseline, BatchedStepsEqualAloneAcrossPageSizes) {
  const GqaConfig c = small(2);
  GqaLayer layer(c, GqaWeights::random(c, 11));
  const int64_t d = 48, seq = 25;
  auto x0 = test::random_normal(seq * d, 12), x1 = test::random_normal(seq * d, 13);
  auto e0 = run_prefill(layer, x0, seq), e1 = run_prefill(layer, x1, seq);
  for (int64_t page_size : {1, 5, 64}) {
    PagedKvPool pool(layer.paged_token_width(), page_size, 80);
    const Seq ids[] = {pool.add_sequence(), pool.add_sequence()};
    std::vector<float> y0(x0.size()), y1(x1.size());
    int64_t t0 = 0, t1 = 0;
    for (int step = 0; t0 < seq || t1 < seq; ++step) {
      const int64_t n0 = std::min<int64_t>(step == 0 ? 10 : 1, seq - t0);
      const int64_t n1 = std::min<int64_t>(step == 0 ? 3 : 2, seq - t1);
      std::vector<Seq> s;
      std::vector<int64_t> n;
      std::vector<float> x;
      if (n0 > 0) {
        s.push_back(ids[0]);
        n.push_back(n0);
        x.insert(x.end(), x0.begin() + t0 * d, x0.begin() + (t0 + n0) * d);
      }
      if (n1 > 0) {
        s.push_back(ids[1]);
        n.push_back(n1);
        x.insert(x.end(), x1.begin() + t1 * d, x1.begin() + (t1 + n1) * d);
      }
      std::vector<float> y(x.size());
      layer.forward(x, s, n, pool, y);
      auto it = y.begin();
      if (n0 > 0) {
        std::copy_n(it, n0 * d, y0.begin() + t0 * d);
        it += n0 * d;
        t0 += n0;
      }
      if (n1 > 0) {
        std::copy_n(it, n1 * d, y1.begin() + t1 * d);
        t1 += n1;
      }
    }
    EXPECT_LT(test::rel_error(y0, e0), 2e-6) << page_size;
    EXPECT_LT(test::rel_error(y1, e1), 2e-6) << page_size;
  }
}

TEST(Baseline, ConfigErrors) {
  GqaConfig c = small(4);
  try {
    c.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "gqa config: num_kv_heads: must divide num_heads (6), got 4");
  }
  EXPECT_EQ(GqaConfig::like_mla(preset_config("deepseek-v2-lite"), 8).cache_numbers_per_token(),
            2 * 8 * 128);
}

}  // namespace
}  // namespace mla
