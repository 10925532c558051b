// The five seed systems as configs (include/mla/presets.h): each mapping's fields, its
// argument errors, and for each seed prefill == decode through the latent cache and naive ==
// absorbed. The training step of each seed is in test_train_seeds.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/layer.h"
#include "mla/presets.h"
#include "test_util.h"

namespace mla {
namespace {

using test::random_normal;
using test::rel_error;

struct Seed {
  const char* name;
  MlaConfig config;
};

// Small versions of each seed's example (same structure, fewer numbers).
std::vector<Seed> small_seeds() {
  presets::ModelArgs args;
  args.dim = 64;
  args.n_heads = 4;
  args.q_lora_rank = 24;
  args.kv_lora_rank = 32;
  args.qk_nope_head_dim = 16;
  args.qk_rope_head_dim = 8;
  args.v_head_dim = 12;
  args.max_seq_len = 64;
  args.original_seq_len = 16;  // YaRN on, as in V3's 4x extension
  return {{"mhla_000", presets::mhla(48, 40, 24, 4, 0.1, 32)},
          {"mla_config_001", presets::mla_config(64, 4, 16, 32, 8, 32, true)},
          {"deepseek_v3_002", presets::deepseek_v3(args)},
          {"latent_attention_003", presets::latent_attention(64, 4, 0.25)},
          {"ropeless_mla_004", presets::ropeless_mla(64, 4, 16)}};
}

void PrintTo(const Seed& s, std::ostream* os) {
  *os << s.name;
}

class SeedPreset : public ::testing::TestWithParam<Seed> {};

TEST_P(SeedPreset, PrefillEqualsDecodeThroughTheCacheOnBothPaths) {
  const MlaConfig& c = GetParam().config;
  MlaLayer layer(c, MlaWeights::random(c, 5));
  const int64_t batch = 2, seq = 11, d = c.hidden_size, d_out = c.out_size();
  auto x = random_normal(batch * seq * d, 6);
  std::vector<float> y_abs(batch * seq * d_out), y_naive(y_abs.size());
  layer.prefill(x, batch, seq, y_abs, AttentionPath::kAbsorbed);
  layer.prefill(x, batch, seq, y_naive, AttentionPath::kNaive);
  EXPECT_LT(rel_error(y_naive, y_abs), 2e-6);

  LatentCache cache(c, batch, seq);
  std::vector<float> y_dec(y_abs.size()), xt(batch * d), yt(batch * d_out);
  for (int64_t t = 0; t < seq; ++t) {
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(x.begin() + (b * seq + t) * d, d, xt.begin() + b * d);
    layer.forward(xt, batch, 1, cache, yt);
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(yt.begin() + b * d_out, d_out, y_dec.begin() + (b * seq + t) * d_out);
  }
  EXPECT_EQ(cache.length(), seq);
  EXPECT_LT(rel_error(y_dec, y_abs), 2e-6);
}

INSTANTIATE_TEST_SUITE_P(Seeds, SeedPreset, ::testing::ValuesIn(small_seeds()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(SeedPresets, MappingsOfTheSeedExamples) {
  // 000: the README's multiheadlatentattention(512, 512, 256, 8, 0.1, 128).
  MlaConfig m = presets::mhla(512, 512, 256, 8, 0.1, 128);
  EXPECT_EQ(m.hidden_size, 512);
  EXPECT_EQ(m.out_size(), 512);
  EXPECT_EQ(m.q_lora_rank, 256);
  EXPECT_EQ(m.kv_lora_rank, 256);
  EXPECT_EQ(m.qk_nope_head_dim, 64);
  EXPECT_EQ(m.qk_rope_head_dim, 32);
  EXPECT_EQ(m.latent_norm, LatentNorm::kNone);
  EXPECT_DOUBLE_EQ(m.attention_dropout, 0.1);
  EXPECT_EQ(m.max_position_embeddings, 128);
  EXPECT_EQ(presets::mhla(512, 256, 64, 8, 0.0, 16).out_size(), 256);
  // 001: MLAConfig(256, 8, 64, 128, 32, 256).
  MlaConfig a = presets::mla_config(256, 8, 64, 128, 32, 256);
  EXPECT_EQ(a.kv_lora_rank, 64);
  EXPECT_EQ(a.q_lora_rank, 128);
  EXPECT_EQ(a.qk_rope_head_dim, 32);
  EXPECT_EQ(a.qk_nope_head_dim, 32);
  EXPECT_FALSE(a.projection_bias);
  // 002: the official defaults give the V2-Lite-like attention of ModelArgs.
  MlaConfig v = presets::deepseek_v3(presets::ModelArgs{});
  EXPECT_EQ(v.hidden_size, 2048);
  EXPECT_EQ(v.latent_dim(), 576);
  EXPECT_TRUE(v.yarn_active());
  EXPECT_NEAR(v.softmax_scale(), std::pow(192.0, -0.5) * std::pow(0.1 * std::log(40.0) + 1, 2),
              1e-12);
  // 003: LatentAttention(512, 8, 0.25).
  MlaConfig l = presets::latent_attention(512, 8, 0.25);
  EXPECT_EQ(l.kv_lora_rank, 128);
  EXPECT_EQ(l.qk_rope_head_dim, 0);
  EXPECT_TRUE(l.projection_bias);
  // 004: RopelessMLA(512, 8, 64).
  MlaConfig r = presets::ropeless_mla(512, 8, 64);
  EXPECT_EQ(r.kv_lora_rank, 64);
  EXPECT_EQ(r.latent_dim(), 64);
  EXPECT_EQ(r.latent_norm, LatentNorm::kLayerNorm);
  EXPECT_FALSE(r.has_q_lora());
}

using test::error_of;

TEST(SeedPresets, ArgumentErrorsNameTheSeedAndArgument) {
  EXPECT_EQ(error_of([] { presets::mhla(512, 500, 256, 8, 0.1, 128); }),
            "MHLA: d_out (500) must be divisible by num_head (8)");
  EXPECT_EQ(error_of([] { presets::mhla(512, 512, 256, 8, 1.5, 128); }),
            "MHLA: dropout_rate must be in [0, 1), got 1.5");
  EXPECT_EQ(error_of([] { presets::mhla(512, 512, 0, 8, 0.1, 128); }),
            "MHLA: dl must be positive, got 0");
  EXPECT_EQ(error_of([] { presets::mla_config(256, 8, 64, 128, 31, 256); }),
            "MLAConfig: rope_dim must be even and not negative, got 31");
  EXPECT_EQ(error_of([] { presets::mla_config(256, 0, 64, 128, 32, 256); }),
            "MLAConfig: num_heads must be positive, got 0");
  presets::ModelArgs args;
  args.qk_rope_head_dim = 7;
  EXPECT_EQ(error_of([&] { presets::deepseek_v3(args); }),
            "ModelArgs: config: qk_rope_head_dim: must be even (RoPE rotates pairs), got 7");
  EXPECT_EQ(error_of([] { presets::latent_attention(512, 8, 0.0); }),
            "LatentAttention: latent_dim_ratio must be in (0, 1], got 0");
  EXPECT_EQ(error_of([] { presets::ropeless_mla(512, 3, 64); }),
            "RopelessMLA: d_model (512) must be divisible by n_heads (3)");
}

}  // namespace
}  // namespace mla
