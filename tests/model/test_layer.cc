// Equivalences of the MLA layer: naive == absorbed, one-shot prefill == prefill + decode,
// batch rows independent, relative-position invariance; and its error messages.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/layer.h"
#include "test_util.h"

namespace mla {
namespace {

using test::random_normal;
using test::rel_error;

struct Shape {
  const char* name;
  MlaConfig config;
};

MlaConfig tiny_variant(int64_t q_lora, int64_t heads, int64_t dn, int64_t dr, int64_t dv,
                       bool yarn) {
  MlaConfig c = preset_config("tiny");
  c.q_lora_rank = q_lora;
  c.num_heads = heads;
  c.qk_nope_head_dim = dn;
  c.qk_rope_head_dim = dr;
  c.v_head_dim = dv;
  if (yarn) {
    c.rope_scaling.type = RopeScalingType::kYarn;
    c.rope_scaling.factor = 40.0;
    c.rope_scaling.original_max_position_embeddings = 16;
    c.rope_scaling.mscale = 0.707;
    c.rope_scaling.mscale_all_dim = 0.707;
  }
  c.validate();
  return c;
}

// The options beyond DeepSeek (the seed systems use them) on top of a tiny variant.
MlaConfig with_options(MlaConfig c, LatentNorm norm, bool bias, int64_t output_size) {
  c.latent_norm = norm;
  c.projection_bias = bias;
  c.output_size = output_size;
  c.validate();
  return c;
}

std::vector<Shape> shapes() {
  const MlaConfig q_lora = tiny_variant(32, 4, 16, 8, 16, false);
  const MlaConfig no_rope_no_q = tiny_variant(0, 4, 16, 0, 16, false);
  return {{"layernorm_bias", with_options(q_lora, LatentNorm::kLayerNorm, true, 0)},
          {"no_norm_out_ne_hidden", with_options(q_lora, LatentNorm::kNone, false, 40)},
          {"ropeless_layernorm", with_options(no_rope_no_q, LatentNorm::kLayerNorm, false, 0)},
          {"bias_out_ne_hidden", with_options(no_rope_no_q, LatentNorm::kNone, true, 96)},
          {"q_lora", tiny_variant(32, 4, 16, 8, 16, false)},
          {"no_q_lora", tiny_variant(0, 4, 16, 8, 16, false)},
          {"dv_ne_dn", tiny_variant(32, 4, 16, 8, 24, false)},
          {"odd_heads", tiny_variant(0, 3, 12, 8, 8, false)},
          {"yarn", tiny_variant(32, 5, 16, 16, 16, true)},
          {"no_rope", tiny_variant(32, 2, 16, 0, 16, false)}};
}

void PrintTo(const Shape& shape, std::ostream* os) {
  *os << shape.name;
}

class LayerEquivalence : public ::testing::TestWithParam<Shape> {};

std::vector<float> run_prefill(MlaLayer& layer, const std::vector<float>& x, int64_t b, int64_t s,
                               AttentionPath path, int64_t start = 0) {
  std::vector<float> y(static_cast<size_t>(b * s * layer.config().out_size()));
  layer.prefill(x, b, s, y, path, start);
  return y;
}

// Prefill `first` tokens, then feed the rest in steps of `step` tokens.
template <typename Cache>
std::vector<float> run_incremental(MlaLayer& layer, const std::vector<float>& x, int64_t batch,
                                   int64_t seq, int64_t first, int64_t step) {
  const int64_t d = layer.config().hidden_size, d_out = layer.config().out_size();
  Cache cache(layer.config(), batch, seq);
  std::vector<float> y(static_cast<size_t>(batch * seq * d_out));
  for (int64_t t = 0; t < seq;) {
    const int64_t n = std::min(t == 0 ? first : step, seq - t);
    std::vector<float> xs(batch * n * d), ys(batch * n * d_out);
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(x.begin() + (b * seq + t) * d, n * d, xs.begin() + b * n * d);
    layer.forward(xs, batch, n, cache, ys);
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(ys.begin() + b * n * d_out, n * d_out, y.begin() + (b * seq + t) * d_out);
    t += n;
  }
  EXPECT_EQ(cache.length(), seq);
  return y;
}

TEST_P(LayerEquivalence, NaiveEqualsAbsorbed) {
  const MlaConfig& c = GetParam().config;
  MlaLayer layer(c, MlaWeights::random(c, 11));
  const int64_t batch = 2, seq = 37;
  auto x = random_normal(batch * seq * c.hidden_size, 3);
  auto y_naive = run_prefill(layer, x, batch, seq, AttentionPath::kNaive);
  auto y_abs = run_prefill(layer, x, batch, seq, AttentionPath::kAbsorbed);
  EXPECT_LT(rel_error(y_abs, y_naive), 2e-6);
}

TEST_P(LayerEquivalence, PrefillEqualsIncrementalDecode) {
  const MlaConfig& c = GetParam().config;
  MlaLayer layer(c, MlaWeights::random(c, 12));
  const int64_t batch = 2, seq = 41;
  auto x = random_normal(batch * seq * c.hidden_size, 4);
  for (AttentionPath path : {AttentionPath::kAbsorbed, AttentionPath::kNaive}) {
    auto full = run_prefill(layer, x, batch, seq, path);
    for (auto [first, step] : {std::pair<int64_t, int64_t>{1, 1}, {20, 1}, {7, 5}, {40, 1}}) {
      auto inc = path == AttentionPath::kAbsorbed
                     ? run_incremental<LatentCache>(layer, x, batch, seq, first, step)
                     : run_incremental<NaiveKvCache>(layer, x, batch, seq, first, step);
      EXPECT_LT(rel_error(inc, full), 2e-6) << "first=" << first << " step=" << step;
    }
  }
}

TEST_P(LayerEquivalence, BatchRowsAreIndependent) {
  const MlaConfig& c = GetParam().config;
  MlaLayer layer(c, MlaWeights::random(c, 13));
  const int64_t seq = 9, d = c.hidden_size, d_out = c.out_size();
  auto x = random_normal(2 * seq * d, 5);
  auto both = run_prefill(layer, x, 2, seq, AttentionPath::kAbsorbed);
  std::vector<float> x1(x.begin() + seq * d, x.end());
  auto second = run_prefill(layer, x1, 1, seq, AttentionPath::kAbsorbed);
  EXPECT_LT(rel_error(std::vector<float>(both.begin() + seq * d_out, both.end()), second), 1e-6);
}

TEST_P(LayerEquivalence, OutputDependsOnlyOnRelativePositions) {
  const MlaConfig& c = GetParam().config;
  MlaLayer layer(c, MlaWeights::random(c, 14));
  const int64_t seq = 12;
  auto x = random_normal(seq * c.hidden_size, 6);
  auto at0 = run_prefill(layer, x, 1, seq, AttentionPath::kAbsorbed, 0);
  auto at100 = run_prefill(layer, x, 1, seq, AttentionPath::kAbsorbed, 100);
  EXPECT_LT(rel_error(at100, at0), 2e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerEquivalence, ::testing::ValuesIn(shapes()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Layer, FirstTokenOutputIsItsOwnValue) {
  // With one token the softmax weight is exactly 1: y = W_O [W_UV_h c_kv]_h, independent of q.
  MlaConfig c = preset_config("tiny");
  MlaWeights w = MlaWeights::random(c, 21);
  MlaWeights w2 = w;
  for (float& v : w2.wq_b) v *= -3.0f;  // a different query must not change the output
  MlaLayer a(c, w), b(c, w2);
  auto x = random_normal(c.hidden_size, 8);
  auto ya = run_prefill(a, x, 1, 1, AttentionPath::kAbsorbed);
  auto yb = run_prefill(b, x, 1, 1, AttentionPath::kAbsorbed);
  EXPECT_LT(rel_error(ya, yb), 1e-6);
}

TEST(Layer, CacheOverflowIsAnErrorAndLeavesCacheIntact) {
  MlaConfig c = preset_config("tiny");
  MlaLayer layer(c, MlaWeights::random(c, 1));
  LatentCache cache(c, 1, 4);
  auto x = random_normal(3 * c.hidden_size, 2);
  std::vector<float> y(x.size());
  layer.forward(x, 1, 3, cache, y);
  std::vector<float> before(cache.rows(0), cache.rows(0) + 4 * cache.row_width());
  try {
    layer.forward(x, 1, 3, cache, y);
    FAIL() << "expected an overflow error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cache: appending 3 tokens to 3 cached would exceed capacity 4");
  }
  EXPECT_EQ(cache.length(), 3);
  EXPECT_EQ(std::vector<float>(cache.rows(0), cache.rows(0) + 4 * cache.row_width()), before);
}

TEST(Layer, RejectsBadSizes) {
  MlaConfig c = preset_config("tiny");
  MlaLayer layer(c, MlaWeights::random(c, 1));
  LatentCache cache(c, 2, 8);
  std::vector<float> x(5), y(5);
  try {
    layer.forward(x, 2, 1, cache, y);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "forward: x has 5 values, expected batch x seq x hidden = 128");
  }
  std::vector<float> x1(64), y1(64);
  try {
    layer.forward(x1, 1, 1, cache, y1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "forward: batch 1 does not match the cache's batch 2");
  }
  try {
    layer.forward(x1, 1, 0, cache, y1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "forward: sequence length must be at least 1, got 0");
  }
  EXPECT_THROW(LatentCache(c, 0, 8), Error);
  EXPECT_THROW(NaiveKvCache(c, 1, 0), Error);
}

TEST(Layer, RejectsWrongWeightShapes) {
  MlaConfig c = preset_config("tiny");
  MlaWeights w = MlaWeights::random(c, 1);
  w.wkv_b.pop_back();
  try {
    MlaLayer layer(c, w);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "weights: kv_b_proj.weight: expected 4096 values for shape [128, 32], got 4095");
  }
}

// bf16 projection weights: the f32 copies are released, kv_b stays, the output moves by a
// bf16-sized amount (~4e-3), and naive == absorbed == incremental decode still hold to well
// below it. Not to float32 rounding: the attention output is rounded to bf16 on its way into
// o_proj, and a float32-sized difference between the forms can flip that rounding (1e-4).
TEST_P(LayerEquivalence, Bf16WeightsKeepTheEquivalences) {
  const MlaConfig& c = GetParam().config;
  MlaLayer f32(c, MlaWeights::random(c, 11));
  MlaLayer bf16(c, MlaWeights::random(c, 11), DType::kBF16);
  EXPECT_EQ(bf16.weight_dtype(), DType::kBF16);
  EXPECT_TRUE(bf16.weights().wq_a.empty() && bf16.weights().wq.empty() &&
              bf16.weights().wkv_a.empty() && bf16.weights().wo.empty());
  EXPECT_EQ(bf16.weights().wkv_b, f32.weights().wkv_b);
  const int64_t batch = 2, seq = 19;
  auto x = random_normal(batch * seq * c.hidden_size, 3);
  auto y32 = run_prefill(f32, x, batch, seq, AttentionPath::kAbsorbed);
  auto y_abs = run_prefill(bf16, x, batch, seq, AttentionPath::kAbsorbed);
  auto y_naive = run_prefill(bf16, x, batch, seq, AttentionPath::kNaive);
  auto y_steps = run_incremental<LatentCache>(bf16, x, batch, seq, 5, 1);
  EXPECT_GT(rel_error(y_abs, y32), 1e-3);
  EXPECT_LT(rel_error(y_abs, y32), 2e-2);
  EXPECT_LT(rel_error(y_abs, y_naive), 5e-4);
  EXPECT_LT(rel_error(y_abs, y_steps), 5e-4);
}

// A layer that borrows its weights (what LmDecoder does with a trained model's buffer) computes
// exactly what one owning a copy does, on both paths, and sees later writes to them.
TEST_P(LayerEquivalence, BorrowedWeightsEqualOwned) {
  const MlaConfig& c = GetParam().config;
  MlaWeights w = MlaWeights::random(c, 21);
  MlaLayer owned(c, w);
  MlaLayer borrowed(c, w.view(c));
  EXPECT_TRUE(borrowed.weights().wkv_b.empty());
  EXPECT_EQ(borrowed.weight_view().wkv_b, w.wkv_b.data());
  const int64_t batch = 2, seq = 7;
  auto x = random_normal(batch * seq * c.hidden_size, 4);
  for (AttentionPath path : {AttentionPath::kAbsorbed, AttentionPath::kNaive}) {
    EXPECT_EQ(run_prefill(borrowed, x, batch, seq, path), run_prefill(owned, x, batch, seq, path));
  }
  for (float& v : w.wo) v *= 2.0f;
  MlaLayer doubled(c, w);
  EXPECT_EQ(run_prefill(borrowed, x, batch, seq, AttentionPath::kAbsorbed),
            run_prefill(doubled, x, batch, seq, AttentionPath::kAbsorbed));
}

TEST(Layer, BorrowedWeightsMustAllBeSet) {
  MlaConfig c = preset_config("tiny");
  MlaWeights w = MlaWeights::random(c, 1);
  MlaWeightView view = w.view(c);
  view.kv_norm = nullptr;
  try {
    MlaLayer layer(c, view);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "weights: kv_a_layernorm.weight: not set (the config uses it)");
  }
  MlaLayer layer(c, w.view(c));
  try {
    layer.mutable_weights();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "mutable_weights: the layer borrows its weights; write to their owner");
  }
}

TEST(Layer, RejectsWeightDtypesItCannotComputeWith) {
  MlaConfig c = preset_config("tiny");
  try {
    MlaLayer layer(c, MlaWeights::random(c, 1), DType::kF16);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "MlaLayer: weight dtype F16 is not supported for computation (use F32 or BF16)");
  }
}

TEST(Layer, CacheSizes) {
  MlaConfig c = preset_config("deepseek-v2-lite");
  LatentCache latent(c, 1, 2);
  NaiveKvCache naive(c, 1, 2);
  EXPECT_EQ(latent.bytes_per_token(), 576 * 4);
  EXPECT_EQ(naive.bytes_per_token(), 16 * (192 + 128) * 4);
  EXPECT_EQ(latent.bytes(), 2 * 576 * 4);
}

}  // namespace
}  // namespace mla
