// The layer options beyond DeepSeek (latent_norm, projection_bias, output_size,
// attention_dropout): their config.json fields and exact errors, that each one really acts, and
// attention_weights / mutable_weights. Naive == absorbed and prefill == decode for them run in
// test_layer.cc's parameterised shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/error.h"
#include "mla/layer.h"
#include "test_util.h"

namespace mla {
namespace {

using test::random_normal;
using test::rel_error;

const char* kBase = R"({"hidden_size": 64, "num_attention_heads": 4, "q_lora_rank": 32,
  "kv_lora_rank": 32, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16)";

std::string error_of(const std::string& extra) {
  try {
    parse_config_json(std::string(kBase) + extra + "}", "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(LayerOptions, ConfigJsonReadsAndRoundTripsEveryOption) {
  MlaConfig c = parse_config_json(std::string(kBase) +
                                      R"(, "latent_norm": "layernorm", "projection_bias": true,
                                      "output_size": 40, "attention_dropout": 0.25})",
                                  "cfg.json");
  EXPECT_EQ(c.latent_norm, LatentNorm::kLayerNorm);
  EXPECT_TRUE(c.projection_bias);
  EXPECT_EQ(c.out_size(), 40);
  EXPECT_DOUBLE_EQ(c.attention_dropout, 0.25);
  MlaConfig back = parse_config_json(config_to_json(c), "again");
  EXPECT_EQ(back.latent_norm, c.latent_norm);
  EXPECT_EQ(back.projection_bias, c.projection_bias);
  EXPECT_EQ(back.output_size, c.output_size);
  EXPECT_DOUBLE_EQ(back.attention_dropout, c.attention_dropout);
  // Defaults are DeepSeek's, and DeepSeek's own fields stay as they were.
  MlaConfig d = parse_config_json(std::string(kBase) + R"(, "attention_bias": false,
                                  "attention_dropout": 0.0})",
                                  "cfg.json");
  EXPECT_EQ(d.latent_norm, LatentNorm::kRmsNorm);
  EXPECT_FALSE(d.projection_bias);
  EXPECT_EQ(d.out_size(), 64);
  EXPECT_EQ(config_to_json(d).find("latent_norm"), std::string::npos);
  EXPECT_EQ(parse_config_json(std::string(kBase) + R"(, "latent_norm": "none"})", "c").latent_norm,
            LatentNorm::kNone);
}

TEST(LayerOptions, ConfigErrorsAreExact) {
  EXPECT_EQ(error_of(R"(, "latent_norm": "batchnorm")"),
            "cfg.json: latent_norm: must be one of rmsnorm, layernorm, none, got 'batchnorm'");
  EXPECT_EQ(error_of(R"(, "latent_norm": 3)"),
            "cfg.json: latent_norm: must be one of rmsnorm, layernorm, none, got 3");
  EXPECT_EQ(error_of(R"(, "projection_bias": "yes")"),
            "cfg.json: projection_bias: must be true or false, got \"yes\"");
  EXPECT_EQ(error_of(R"(, "attention_bias": true)"),
            "cfg.json: attention_bias: true is not supported (use projection_bias)");
  EXPECT_EQ(error_of(R"(, "output_size": 0)"), "cfg.json: output_size: must be positive, got 0");
  EXPECT_EQ(error_of(R"(, "output_size": -3)"), "cfg.json: output_size: must be positive, got -3");
  EXPECT_EQ(error_of(R"(, "output_size": 2.5)"),
            "cfg.json: output_size: must be an integer, got 2.5");
  EXPECT_EQ(error_of(R"(, "output_size": 2000000)"),
            "cfg.json: output_size: too large (> 2^20), got 2000000");
  EXPECT_EQ(error_of(R"(, "attention_dropout": 1)"),
            "cfg.json: attention_dropout: must be in [0, 1), got 1");
  EXPECT_EQ(error_of(R"(, "attention_dropout": -0.5)"),
            "cfg.json: attention_dropout: must be in [0, 1), got -0.5");
  EXPECT_EQ(error_of(R"(, "attention_dropout": "x")"),
            "cfg.json: attention_dropout: must be a number, got \"x\"");
}

MlaConfig tiny(LatentNorm norm, bool bias, int64_t out) {
  MlaConfig c = preset_config("tiny");
  c.latent_norm = norm;
  c.projection_bias = bias;
  c.output_size = out;
  return c;
}

std::vector<float> prefill(MlaLayer& layer, const std::vector<float>& x, int64_t batch, int64_t seq,
                           AttentionPath path = AttentionPath::kAbsorbed) {
  std::vector<float> y(static_cast<size_t>(batch * seq * layer.config().out_size()));
  layer.prefill(x, batch, seq, y, path);
  return y;
}

TEST(LayerOptions, WeightListFollowsTheOptions) {
  auto names = [](const MlaConfig& c) {
    std::vector<std::string> out;
    MlaWeights w;
    w.for_each_tensor(c, [&](const std::string& n, const std::vector<int64_t>&,
                             std::vector<float>&) { out.push_back(n); });
    return out;
  };
  EXPECT_EQ(
      names(tiny(LatentNorm::kNone, false, 0)),
      (std::vector<std::string>{"q_a_proj.weight", "q_b_proj.weight", "kv_a_proj_with_mqa.weight",
                                "kv_b_proj.weight", "o_proj.weight"}));
  EXPECT_EQ(names(tiny(LatentNorm::kLayerNorm, true, 0)),
            (std::vector<std::string>{
                "q_a_proj.weight", "q_a_proj.bias", "q_a_layernorm.weight", "q_a_layernorm.bias",
                "q_b_proj.weight", "q_b_proj.bias", "kv_a_proj_with_mqa.weight",
                "kv_a_proj_with_mqa.bias", "kv_a_layernorm.weight", "kv_a_layernorm.bias",
                "kv_b_proj.weight", "kv_b_proj.bias", "o_proj.weight", "o_proj.bias"}));
  MlaWeights w = MlaWeights::random(tiny(LatentNorm::kRmsNorm, true, 40), 1);
  EXPECT_EQ(w.wo.size(), 40u * 4 * 16);
  EXPECT_EQ(w.bo.size(), 40u);
}

TEST(LayerOptions, OutputBiasIsAddedToEveryToken) {
  const MlaConfig c = tiny(LatentNorm::kRmsNorm, true, 40);
  MlaWeights w = MlaWeights::random(c, 3);
  MlaWeights w0 = w;
  std::fill(w0.bo.begin(), w0.bo.end(), 0.0f);
  MlaLayer a(c, w), b(c, w0);
  auto x = random_normal(2 * 5 * c.hidden_size, 1);
  auto ya = prefill(a, x, 2, 5), yb = prefill(b, x, 2, 5);
  ASSERT_EQ(ya.size(), 2u * 5 * 40);
  for (size_t i = 0; i < ya.size(); ++i) EXPECT_NEAR(ya[i] - yb[i], w.bo[i % 40], 1e-5);
}

TEST(LayerOptions, KeyBiasOfKvBChangesNothingValueBiasShiftsByWo) {
  // q . (k + b) differs from q . k by the same amount for every key of a query, and softmax
  // ignores that: the absorbed path's reason for dropping b_UK. Checked on both paths.
  const MlaConfig c = tiny(LatentNorm::kLayerNorm, true, 0);
  MlaWeights w = MlaWeights::random(c, 4);
  MlaWeights w2 = w;
  const int64_t dn = c.qk_nope_head_dim, dv = c.v_head_dim;
  for (int64_t h = 0; h < c.num_heads; ++h) {
    for (int64_t i = 0; i < dn; ++i) w2.bkv_b[h * (dn + dv) + i] += 0.7f;
  }
  MlaLayer a(c, w), b(c, w2);
  auto x = random_normal(9 * c.hidden_size, 2);
  for (AttentionPath path : {AttentionPath::kNaive, AttentionPath::kAbsorbed}) {
    EXPECT_LT(rel_error(prefill(a, x, 1, 9, path), prefill(b, x, 1, 9, path)), 2e-6);
  }
}

TEST(LayerOptions, EachLatentNormChangesTheOutput) {
  auto x = random_normal(6 * 64, 5);
  std::vector<std::vector<float>> ys;
  for (LatentNorm n : {LatentNorm::kRmsNorm, LatentNorm::kLayerNorm, LatentNorm::kNone}) {
    const MlaConfig c = tiny(n, false, 0);
    MlaLayer layer(c, MlaWeights::random(c, 6));
    ys.push_back(prefill(layer, x, 1, 6));
  }
  EXPECT_GT(rel_error(ys[0], ys[1]), 1e-3);
  EXPECT_GT(rel_error(ys[0], ys[2]), 1e-3);
}

TEST(LayerOptions, AttentionDropoutIsNotAppliedAtInference) {
  MlaConfig c = tiny(LatentNorm::kRmsNorm, false, 0), c2 = c;
  c2.attention_dropout = 0.5;
  MlaLayer a(c, MlaWeights::random(c, 7)), b(c2, MlaWeights::random(c, 7));
  auto x = random_normal(4 * 64, 8);
  EXPECT_EQ(prefill(a, x, 1, 4), prefill(b, x, 1, 4));
}

TEST(LayerOptions, AttentionWeightsAreCausalDistributions) {
  const MlaConfig c = tiny(LatentNorm::kLayerNorm, true, 0);
  MlaLayer layer(c, MlaWeights::random(c, 9));
  const int64_t batch = 2, seq = 7, h = c.num_heads;
  auto x = random_normal(batch * seq * c.hidden_size, 10);
  auto p = layer.attention_weights(x, batch, seq);
  ASSERT_EQ(p.size(), static_cast<size_t>(batch * h * seq * seq));
  for (int64_t bh = 0; bh < batch * h; ++bh) {
    for (int64_t i = 0; i < seq; ++i) {
      const float* row = p.data() + (bh * seq + i) * seq;
      double sum = 0.0;
      for (int64_t j = 0; j < seq; ++j) {
        if (j > i) {
          EXPECT_EQ(row[j], 0.0f);
        }
        EXPECT_GE(row[j], 0.0f);
        sum += row[j];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
    EXPECT_FLOAT_EQ(p[static_cast<size_t>(bh * seq * seq)], 1.0f);  // token 0 sees only itself
  }
  // Batch rows are independent: the second sequence alone gives its weights again.
  std::vector<float> x1(x.begin() + seq * c.hidden_size, x.end());
  auto p1 = layer.attention_weights(x1, 1, seq);
  EXPECT_LT(rel_error(std::vector<float>(p.begin() + h * seq * seq, p.end()), p1), 1e-6);
}

TEST(LayerOptions, AttentionWeightsErrors) {
  MlaConfig c = preset_config("tiny");
  MlaLayer layer(c, MlaWeights::random(c, 1));
  std::vector<float> x(3 * 64);
  EXPECT_THROW(layer.attention_weights(x, 1, 2), Error);
  EXPECT_THROW(layer.attention_weights(x, 0, 3), Error);
  EXPECT_THROW(layer.attention_weights(x, 1, 3, -1), Error);
  // Sizes whose product would overflow are refused before anything is computed.
  EXPECT_THROW(layer.attention_weights(x, int64_t{1} << 62, 1 << 16), Error);
  EXPECT_THROW(layer.attention_weights(x, 1, int64_t{1} << 40), Error);
  try {
    layer.attention_weights(x, 1, 2);
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "attention_weights: x has 192 values, expected batch x seq x hidden = 128");
  }
}

TEST(LayerOptions, MutableWeightsWriteThrough) {
  const MlaConfig c = tiny(LatentNorm::kRmsNorm, true, 0);
  MlaLayer layer(c, MlaWeights::random(c, 11));
  auto x = random_normal(3 * 64, 12);
  auto before = prefill(layer, x, 1, 3);
  layer.mutable_weights().bo[0] += 1.0f;
  auto after = prefill(layer, x, 1, 3);
  EXPECT_NEAR(after[0] - before[0], 1.0f, 1e-5);
  EXPECT_NEAR(after[1], before[1], 1e-6);
  MlaLayer bf16(c, MlaWeights::random(c, 11), DType::kBF16);
  EXPECT_THROW(bf16.mutable_weights(), Error);
}

TEST(LayerOptions, WrongOutputSizeIsAnError) {
  const MlaConfig c = tiny(LatentNorm::kRmsNorm, false, 40);
  MlaLayer layer(c, MlaWeights::random(c, 1));
  std::vector<float> x(2 * 64), y(2 * 64);
  try {
    layer.prefill(x, 1, 2, y, AttentionPath::kAbsorbed);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "forward: y has 128 values, expected batch x seq x output_size = 80");
  }
}

}  // namespace
}  // namespace mla
