// Generation through the inference caches: the decoder (MLA, dense or sparse, through MlaLayer's
// absorbed path and LatentCache; MHA/GQA/MQA through GqaLayer and a paged pool) gives the same
// logits as the
// training forward over the whole sequence, and greedy decoding is token for token identical to
// recomputing the whole sequence at every step. Models are first trained on the copy task so
// that their predictions are confident, as in real use.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "cli/train_tasks.h"
#include "mla/error.h"
#include "mla/lm_decoder.h"
#include "mla/sampler.h"
#include "mla/train.h"

namespace mla {
namespace {

struct Case {
  const char* name;
  LmShape shape;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> cases() {
  auto shape = [](AttentionKind a, int64_t q_lora, int64_t rope, NormKind norm, bool tied) {
    LmShape s;
    s.attention = a;
    s.d_model = 48;
    s.num_layers = 2;
    s.heads = 4;
    s.q_lora_rank = q_lora;
    s.rope_dim = rope;
    s.norm = norm;
    s.tied_embeddings = tied;
    s.max_seq_len = 32;
    return s;
  };
  using A = AttentionKind;
  // Sparse MLA trains with the pattern in the naive form and decodes with it in the absorbed one.
  auto absorbed = [](LmShape s) {
    s.absorbed = true;
    return s;
  };
  auto sparse = [&](const char* spec, int64_t dense_layers) {
    LmShape s = shape(A::kMla, 16, -1, NormKind::kRmsNorm, true);
    s.sparse = parse_sparse_spec(spec);
    s.dense_layers = dense_layers;
    return s;
  };
  return {{"mla_q_lora", shape(A::kMla, 16, -1, NormKind::kRmsNorm, true)},
          {"mla_sparse_window_after_a_dense_layer", sparse("window:size=6", 1)},
          {"mla_sparse_topk_with_dense_heads", sparse("topk:k=5,dense-heads=2", 0)},
          {"mla_absorbed_form_block_sparse", absorbed(sparse("block:size=4,local=2,global=1", 0))},
          {"mla_ropeless_layernorm_untied", shape(A::kMla, 0, 0, NormKind::kLayerNorm, false)},
          {"mha", shape(A::kMha, 0, -1, NormKind::kRmsNorm, true)},
          {"gqa_partial_rope", shape(A::kGqa, 0, 6, NormKind::kRmsNorm, false)},
          {"mqa", shape(A::kMqa, 0, -1, NormKind::kLayerNorm, true)}};
}

class TrainGenerate : public ::testing::TestWithParam<Case> {};

TEST_P(TrainGenerate, CachedDecodingMatchesRecomputation) {
  TrainOptions o;
  o.steps = 250;
  o.batch = 16;
  o.seq = 32;
  o.task = "copy";
  Trainer trainer(lm_config_from_shape(GetParam().shape), o, cli::train_data);
  for (int64_t i = 0; i < o.steps; ++i) trainer.step();
  const LmModel& model = trainer.model();

  // Logits of every position: incremental decoder (prefill 5, then one token at a time) vs the
  // training forward over the whole sequence.
  const std::string text = "qwertyuiopasdfgh|qwertyuio";
  const std::vector<int32_t> tokens = encode_bytes(text);
  const auto s = static_cast<int64_t>(tokens.size());
  LmModel full(model.config());
  std::copy(model.params().begin(), model.params().end(), full.params().begin());
  full.forward(tokens, {}, 1, s);
  LmDecoder decoder(model, s);
  double diff = 0.0, scale = 0.0;
  const int64_t v = model.config().vocab_size;
  for (int64_t t = 0; t < s;) {
    const int64_t n = t == 0 ? 5 : 1;
    std::span<const float> logits =
        decoder.feed(std::span(tokens).subspan(static_cast<size_t>(t), static_cast<size_t>(n)));
    t += n;
    for (int64_t j = 0; j < v; ++j) {
      const float ref = full.logits()[static_cast<size_t>((t - 1) * v + j)];
      diff = std::max(diff, static_cast<double>(std::fabs(logits[static_cast<size_t>(j)] - ref)));
      scale = std::max(scale, static_cast<double>(std::fabs(ref)));
    }
  }
  EXPECT_LT(diff / scale, 1e-5);

  SampleOptions greedy;
  greedy.max_tokens = 24;
  greedy.temperature = 0.0;
  const std::vector<int32_t> prompt = encode_bytes("zyxwvutsrqponmlk|");
  const std::vector<int32_t> cached = generate(model, prompt, greedy);
  greedy.recompute = true;
  const std::vector<int32_t> recomputed = generate(model, prompt, greedy);
  EXPECT_EQ(cached, recomputed);
  std::printf("[generate] %-30s logits rel diff %.2e, greedy \"%s\"\n", GetParam().name,
              diff / scale, decode_bytes(cached).c_str());

  SampleOptions sampled;
  sampled.max_tokens = 16;
  sampled.temperature = 0.8;
  sampled.top_k = 5;
  sampled.seed = 3;
  EXPECT_EQ(generate(model, prompt, sampled), generate(model, prompt, sampled));  // seeded
  sampled.recompute = true;
  EXPECT_EQ(generate(model, prompt, sampled).size(), 16u);
}

// The decoder serves the model's parameter buffer in place: a decoder made before the parameters
// change computes exactly what one made after does, and what the training forward does.
TEST_P(TrainGenerate, DecoderServesTheModelsParametersInPlace) {
  LmModel model(lm_config_from_shape(GetParam().shape));
  model.init_random(1);
  const std::vector<int32_t> tokens = encode_bytes("borrowed, not copied");
  const auto s = static_cast<int64_t>(tokens.size());
  LmDecoder before(model, s);
  LmModel other(model.config());
  other.init_random(2);
  std::copy(other.params().begin(), other.params().end(), model.params().begin());
  LmDecoder after(model, s);
  const std::span<const float> a = before.feed(tokens);
  const std::vector<float> from_before(a.begin(), a.end());
  const std::span<const float> b = after.feed(tokens);
  EXPECT_EQ(from_before, std::vector<float>(b.begin(), b.end()));
  other.forward(tokens, {}, 1, s);
  const int64_t v = model.config().vocab_size;
  double diff = 0.0, scale = 0.0;
  for (int64_t j = 0; j < v; ++j) {
    const float ref = other.logits()[static_cast<size_t>((s - 1) * v + j)];
    diff =
        std::max(diff, static_cast<double>(std::fabs(from_before[static_cast<size_t>(j)] - ref)));
    scale = std::max(scale, static_cast<double>(std::fabs(ref)));
  }
  EXPECT_LT(diff / scale, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Models, TrainGenerate, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return param_info.param.name;
                         });

TEST(TrainSampling, TopKAndTemperature) {
  // generate() samples through mla::Sampler (tests/unit/test_sampler.cc tests it in depth).
  const std::vector<float> logits = {0.0f, 5.0f, 1.0f, 4.9f, -3.0f};
  SamplerParams p;
  p.temperature = 0.0;
  EXPECT_EQ(Sampler(p).sample(logits), 1);
  p.temperature = 1.0;
  p.top_k = 2;
  Sampler sampler(p);
  int counts[5] = {0, 0, 0, 0, 0};
  for (int i = 0; i < 4000; ++i) ++counts[sampler.sample(logits)];
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);  // only the two best
  EXPECT_NEAR(counts[1] / 4000.0, 1.0 / (1.0 + std::exp(-0.1)), 0.03);
  SampleOptions o;
  EXPECT_THROW(generate(LmModel(lm_config_from_shape(LmShape{})), {}, o), Error);
}

}  // namespace
}  // namespace mla
