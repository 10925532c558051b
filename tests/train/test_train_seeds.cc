// Training with the layer options the seed systems need (latent_norm, projection_bias,
// output_size, attention_dropout): the MLA block's backward against finite differences, the
// block's forward against the inference layer, and one training step of a model built on each
// seed's config (seed 001's pre-norm block: RMSNorm, GELU feed-forward, dropout).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/layer.h"
#include "mla/lm_decoder.h"
#include "mla/model_lm.h"
#include "mla/presets.h"
#include "mla/train_optim.h"
#include "test_util.h"
#include "train/grad_check.h"
#include "train/mla_block.h"

namespace mla::train {
namespace {

template <typename T>
T* ptr(std::map<std::string, std::vector<T>>& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? nullptr : it->second.data();
}

// Binds block pointers to tensors stored by their Hugging Face names.
template <typename T>
MlaTensors<T> bind_by_name(const MlaConfig& c, std::map<std::string, std::vector<T>>& m) {
  MlaTensors<T> w;
  w.for_each_tensor(c, [&](const std::string& name, const std::vector<int64_t>&, T*& slot) {
    slot = ptr(m, name);
  });
  return w;
}

MlaConfig small(int64_t q_lora, int64_t dr, LatentNorm norm, bool bias, int64_t out,
                double dropout) {
  MlaConfig c;
  c.hidden_size = 12;
  c.num_heads = 3;
  c.q_lora_rank = q_lora;
  c.kv_lora_rank = 6;
  c.qk_nope_head_dim = 4;
  c.qk_rope_head_dim = dr;
  c.v_head_dim = 5;
  c.max_position_embeddings = 64;
  c.latent_norm = norm;
  c.projection_bias = bias;
  c.output_size = out;
  c.attention_dropout = dropout;
  c.validate();
  return c;
}

TEST(TrainSeeds, MlaBlockGradientsWithEveryOption) {
  struct Case {
    const char* name;
    MlaConfig config;
  };
  for (const Case& cs :
       {Case{"layernorm bias q_lora", small(5, 4, LatentNorm::kLayerNorm, true, 0, 0.0)},
        Case{"no norm out 7", small(5, 4, LatentNorm::kNone, false, 7, 0.0)},
        Case{"ropeless layernorm", small(0, 0, LatentNorm::kLayerNorm, false, 0, 0.0)},
        Case{"rms bias no q_lora out 9", small(0, 4, LatentNorm::kRmsNorm, true, 9, 0.0)},
        Case{"attention dropout 0.3", small(5, 4, LatentNorm::kNone, true, 0, 0.3)}}) {
    const MlaConfig& c = cs.config;
    std::map<std::string, std::vector<double>> value, grad;
    uint64_t seed = 500;
    MlaWeights names;
    names.for_each_tensor(
        c, [&](const std::string& name, const std::vector<int64_t>& shape, std::vector<float>&) {
          const int64_t in = shape.size() == 2 ? shape[1] : 1;
          std::vector<double> v = random_doubles(static_cast<size_t>(shape[0] * in), ++seed,
                                                 shape.size() == 2 ? 1.0 / std::sqrt(in) : 0.2);
          if (name.find("layernorm.weight") != std::string::npos) {
            for (double& e : v) e += 1.0;
          }
          value[name] = v;
          grad[name].assign(v.size(), 0.0);
        });
    MlaBlock<double> block(c);
    typename MlaBlock<double>::Scratch scratch;
    const int64_t b = 2, s = 4, n = b * s;
    auto x = random_doubles(n * c.hidden_size, 100), r = random_doubles(n * c.out_size(), 101);
    std::vector<double> out(n * c.out_size());
    // Training on, one fixed key: the dropout masks are the same in every evaluation.
    auto loss = [&] {
      block.forward(out.data(), x.data(), bind_by_name(c, value), b, s, true, 77);
      return dot(out, r, out.size());
    };
    loss();
    std::vector<double> dx(x.size(), 0.0);
    block.backward(dx.data(), bind_by_name(c, grad), r.data(), x.data(), bind_by_name(c, value),
                   scratch);
    const double ex = gradient_error(x, dx, loss);
    std::printf("[grad] %-26s %-28s %.2e\n", cs.name, "x", ex);
    EXPECT_LT(ex, 1e-7) << cs.name;
    for (auto& [name, v] : value) {
      const double e = gradient_error(v, grad[name], loss);
      std::printf("[grad] %-26s %-28s %.2e\n", cs.name, name.c_str(), e);
      EXPECT_LT(e, 1e-7) << cs.name << " " << name;
    }
  }
}

TEST(TrainSeeds, AttentionDropoutActsOnlyInTraining) {
  const MlaConfig c = small(5, 4, LatentNorm::kRmsNorm, false, 0, 0.5);
  std::map<std::string, std::vector<double>> value;
  uint64_t seed = 1;
  MlaWeights names;
  names.for_each_tensor(
      c, [&](const std::string& name, const std::vector<int64_t>& shape, std::vector<float>&) {
        value[name] = random_doubles(
            static_cast<size_t>(shape[0] * (shape.size() == 2 ? shape[1] : 1)), ++seed, 0.5);
      });
  MlaBlock<double> block(c);
  auto x = random_doubles(2 * 6 * 12, 3);
  std::vector<double> eval(2 * 6 * 12), eval2(eval.size()), train1(eval.size()),
      train2(eval.size());
  block.forward(eval.data(), x.data(), bind_by_name(c, value), 2, 6);
  block.forward(train1.data(), x.data(), bind_by_name(c, value), 2, 6, true, 1);
  block.forward(train2.data(), x.data(), bind_by_name(c, value), 2, 6, true, 2);
  block.forward(eval2.data(), x.data(), bind_by_name(c, value), 2, 6);
  EXPECT_EQ(eval, eval2);
  EXPECT_NE(train1, eval);
  EXPECT_NE(train1, train2);  // another key, other masks
}

// Small versions of the five seeds, with d_out == d_in where a model's residual needs it.
std::vector<std::pair<std::string, MlaConfig>> seed_configs() {
  presets::ModelArgs args;
  args.dim = 32;
  args.n_heads = 2;
  args.q_lora_rank = 16;
  args.kv_lora_rank = 16;
  args.qk_nope_head_dim = 8;
  args.qk_rope_head_dim = 4;
  args.v_head_dim = 8;
  args.max_seq_len = 64;
  args.original_seq_len = 16;
  return {{"000 MHLA", presets::mhla(32, 32, 16, 4, 0.1, 32)},
          {"001 MLAConfig", presets::mla_config(32, 4, 8, 16, 4, 32, true)},
          {"002 DeepSeek-V3", presets::deepseek_v3(args)},
          {"003 LatentAttention", presets::latent_attention(32, 4, 0.25)},
          {"004 RopelessMLA", presets::ropeless_mla(32, 4, 8)}};
}

TEST(TrainSeeds, BlockForwardEqualsInferenceLayer) {
  for (const auto& [name, config] : seed_configs()) {
    MlaConfig c = config;
    c.output_size = name == "000 MHLA" ? 24 : 0;  // d_out != d_in as well
    MlaWeights w = MlaWeights::random(c, 3);
    std::map<std::string, std::vector<float>> m;
    w.for_each_tensor(c, [&](const std::string& n, const std::vector<int64_t>&,
                             std::vector<float>& data) { m[n] = data; });
    MlaBlock<float> block(c);
    MlaLayer layer(c, w);
    const int64_t b = 2, s = 9;
    auto x = test::random_normal(b * s * c.hidden_size, 4);
    std::vector<float> y_train(b * s * c.out_size()), y_infer(y_train.size());
    block.forward(y_train.data(), x.data(), bind_by_name(c, m), b, s);
    layer.prefill(x, b, s, y_infer, AttentionPath::kAbsorbed);
    EXPECT_LT(test::rel_error(y_train, y_infer), 1e-5) << name;
  }
}

TEST(TrainSeeds, OneTrainingStepOfEachSeedLowersTheLoss) {
  for (const auto& [name, mla] : seed_configs()) {
    LmConfig c;
    c.vocab_size = 16;
    c.max_seq_len = 16;
    c.d_model = mla.hidden_size;
    c.num_layers = 1;
    c.attention = AttentionKind::kMla;
    c.mla = mla;
    c.ffn = FfnKind::kGelu;  // seed 001's block: pre-norm RMSNorm, GELU feed-forward, dropout
    c.ffn_hidden = 4 * c.d_model;
    c.norm = NormKind::kRmsNorm;
    c.dropout = 0.1;
    c.tied_embeddings = false;
    LmModel model(c);
    model.init_random(1);
    std::vector<int32_t> tokens(2 * 12), targets(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = static_cast<int32_t>((i * 5) % 16);
      targets[i] = static_cast<int32_t>((i * 5 + 3) % 16);
    }
    const double before = model.forward(tokens, targets, 2, 12);
    model.zero_grad();
    model.forward(tokens, targets, 2, 12, /*training=*/true, /*dropout_key=*/9);
    model.backward();
    double norm = 0.0;
    for (float g : model.grads()) norm += static_cast<double>(g) * g;
    EXPECT_TRUE(std::isfinite(norm)) << name;
    EXPECT_GT(norm, 0.0) << name;
    AdamW opt(model.num_parameters(), AdamWConfig{0.9, 0.95, 1e-8, 0.0});
    opt.update(model.params(), model.grads(), model.tensors(), 1e-2);
    const double after = model.forward(tokens, targets, 2, 12);
    std::printf("[train] %-20s loss %.4f -> %.4f\n", name.c_str(), before, after);
    EXPECT_LT(after, before) << name;
  }
}

// Seed 001's block on each seed's attention, served through the inference caches: prefill of 5
// tokens then one token at a time through LmDecoder (MlaLayer's absorbed path, LatentCache)
// gives the training forward's logits over the whole sequence.
TEST(TrainSeeds, BlockPrefillThenCachedDecodeEqualsFullForward) {
  for (const auto& [name, attention] : seed_configs()) {
    LmConfig c;
    c.vocab_size = 16;
    c.max_seq_len = 16;
    c.d_model = attention.hidden_size;
    c.num_layers = 2;
    c.mla = attention;
    c.ffn = FfnKind::kGelu;
    c.ffn_hidden = 2 * c.d_model;
    c.dropout = 0.1;  // training only: neither side applies it here
    LmModel model(c);
    model.init_random(2);
    // Biases start at 0; make them count.
    std::mt19937_64 rng(5);
    std::normal_distribution<float> dist(0.0f, 0.1f);
    for (const ParamTensor& t : model.tensors()) {
      if (t.name.size() > 5 && t.name.compare(t.name.size() - 5, 5, ".bias") == 0) {
        for (int64_t i = 0; i < t.numel; ++i)
          model.params()[static_cast<size_t>(t.offset + i)] = dist(rng);
      }
    }
    std::vector<int32_t> tokens(14);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7 + 1) % 16);
    model.forward(tokens, {}, 1, 14);
    LmDecoder decoder(model, 14);
    double diff = 0.0, scale = 0.0;
    for (int64_t t = 0; t < 14;) {
      const int64_t n = t == 0 ? 5 : 1;
      std::span<const float> logits =
          decoder.feed(std::span(tokens).subspan(static_cast<size_t>(t), static_cast<size_t>(n)));
      t += n;
      for (int64_t j = 0; j < 16; ++j) {
        const float ref = model.logits()[static_cast<size_t>((t - 1) * 16 + j)];
        diff = std::max(diff, static_cast<double>(std::fabs(logits[static_cast<size_t>(j)] - ref)));
        scale = std::max(scale, static_cast<double>(std::fabs(ref)));
      }
    }
    EXPECT_LT(diff / scale, 1e-5) << name;
  }
}

TEST(TrainSeeds, ModelNeedsOutputSizeEqualToDModel) {
  LmConfig c;
  c.d_model = 32;
  c.ffn_hidden = 64;
  c.mla = presets::mhla(32, 24, 16, 4, 0.0, 32);
  try {
    c.validate();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(
        e.what(),
        "lm config: mla.output_size: must equal d_model (32, the residual stream), got 24");
  }
}

}  // namespace
}  // namespace mla::train
