// Whole-model config.json: the released DeepSeek-V2-Lite, V3 and Kimi K2 fields, the counts
// against the published sizes, and the errors naming the field.
#include <gtest/gtest.h>

#include <string>

#include "mla/error.h"
#include "mla/model.h"

namespace mla {
namespace {

// The fields of DeepSeek-V2-Lite's released config.json that the model reads.
const char* const kV2Lite = R"({
  "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
  "vocab_size": 102400, "hidden_size": 2048, "intermediate_size": 10944,
  "moe_intermediate_size": 1408, "num_hidden_layers": 27, "num_attention_heads": 16,
  "n_shared_experts": 2, "n_routed_experts": 64, "routed_scaling_factor": 1.0,
  "kv_lora_rank": 512, "q_lora_rank": null, "qk_rope_head_dim": 64, "v_head_dim": 128,
  "qk_nope_head_dim": 128, "topk_method": "greedy", "n_group": 1, "topk_group": 1,
  "num_experts_per_tok": 6, "moe_layer_freq": 1, "first_k_dense_replace": 1,
  "norm_topk_prob": false, "scoring_func": "softmax", "max_position_embeddings": 163840,
  "rms_norm_eps": 1e-06, "rope_theta": 10000, "tie_word_embeddings": false,
  "bos_token_id": 100000, "eos_token_id": 100001, "attention_bias": false,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                   "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096, "type": "yarn"}
})";

std::string v3_like(const std::string& model_type, const std::string& extra = "") {
  return R"({"architectures": ["DeepseekV3ForCausalLM"], "model_type": ")" + model_type + R"(",
    "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
    "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_nextn_predict_layers": 1,
    "num_attention_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256,
    "routed_scaling_factor": 2.5, "kv_lora_rank": 512, "q_lora_rank": 1536,
    "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128, "topk_method": "noaux_tc",
    "n_group": 8, "topk_group": 4, "num_experts_per_tok": 8, "moe_layer_freq": 1,
    "first_k_dense_replace": 3, "norm_topk_prob": true, "scoring_func": "sigmoid",
    "max_position_embeddings": 163840, "rope_theta": 10000, "eos_token_id": 1)" +
         extra + "}";
}

TEST(DeepseekConfig, ReadsDeepSeekV2Lite) {
  const DeepseekConfig c = parse_deepseek_config(kV2Lite, "v2lite");
  EXPECT_EQ(c.vocab_size, 102400);
  EXPECT_EQ(c.num_layers, 27);
  EXPECT_FALSE(c.attention.has_q_lora());
  EXPECT_EQ(c.router.method, TopkMethod::kGreedy);
  EXPECT_EQ(c.router.scoring, ScoringFunc::kSoftmax);
  EXPECT_EQ(c.router.num_experts, 64);
  EXPECT_EQ(c.router.top_k, 6);
  EXPECT_FALSE(c.router.norm_topk_prob);
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_TRUE(c.is_moe_layer(1));
  EXPECT_EQ(c.bos_token_id, 100000);
  // deepseek-model.md: 15.7 B parameters, 2.4 B active per token.
  const ModelCounts n = count_model(c);
  EXPECT_EQ(n.dense_layers, 1);
  EXPECT_EQ(n.moe_layers, 26);
  EXPECT_NEAR(static_cast<double>(n.parameters) / 1e9, 15.7, 0.1);
  EXPECT_NEAR(static_cast<double>(n.active_parameters) / 1e9, 2.4, 0.15);
  EXPECT_EQ(n.cache_numbers_per_token, 27 * 576);
}

TEST(DeepseekConfig, ReadsDeepSeekV3AndKimiK2Layouts) {
  for (const char* type : {"deepseek_v3", "kimi_k2"}) {
    const DeepseekConfig c = parse_deepseek_config(v3_like(type), type);
    EXPECT_EQ(c.model_type, type);
    EXPECT_EQ(c.router.method, TopkMethod::kNoauxTc);
    EXPECT_TRUE(c.router.has_bias());
    EXPECT_EQ(c.router.n_group, 8);
    EXPECT_EQ(c.router.topk_group, 4);
    EXPECT_DOUBLE_EQ(c.router.routed_scaling_factor, 2.5);
    EXPECT_EQ(c.num_nextn_predict_layers, 1);
    EXPECT_FALSE(c.is_moe_layer(2));
    EXPECT_TRUE(c.is_moe_layer(3));
  }
  // 671 B parameters, 37 B active (MTP layer not counted).
  const ModelCounts n = count_model(parse_deepseek_config(v3_like("deepseek_v3"), "v3"));
  EXPECT_NEAR(static_cast<double>(n.parameters) / 1e9, 671.0, 8.0);
  EXPECT_NEAR(static_cast<double>(n.active_parameters) / 1e9, 37.0, 1.5);
}

TEST(DeepseekConfig, ReadsV32IndexerFields) {
  std::string text = v3_like("deepseek_v32", R"(, "index_n_heads": 64, "index_head_dim": 128,
      "index_topk": 2048)");
  text.replace(text.find("DeepseekV3ForCausalLM"), 21, "DeepseekV32ForCausalLM");
  const DeepseekConfig c = parse_deepseek_config(text, "v32");
  EXPECT_TRUE(c.dsa);
  EXPECT_EQ(c.dsa_config.top_k, 2048);
  EXPECT_EQ(count_model(c).cache_numbers_per_token, 61 * (576 + 128));
}

void expect_error(const std::string& text, const std::string& message) {
  try {
    parse_deepseek_config(text, "cfg");
    FAIL() << "expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

std::string with(const std::string& text, const std::string& from, const std::string& to) {
  std::string s = text;
  s.replace(s.find(from), from.size(), to);
  return s;
}

TEST(DeepseekConfig, ErrorsNameTheField) {
  const std::string v3 = v3_like("deepseek_v3");
  expect_error(with(v3, "DeepseekV3ForCausalLM", "MixtralForCausalLM"),
               "cfg: architectures: unknown architecture 'MixtralForCausalLM' (supported: "
               "DeepseekV2ForCausalLM, DeepseekV3ForCausalLM, DeepseekV32ForCausalLM)");
  expect_error(with(v3, R"("architectures": ["DeepseekV3ForCausalLM"],)", ""),
               "cfg: architectures: missing (a whole-model config.json names its architecture)");
  expect_error(with(v3, R"("n_group": 8)", R"("n_group": 7)"),
               "cfg: n_group: must be at most 64 and divide n_routed_experts (256), got 7");
  expect_error(with(v3, R"("topk_group": 4)", R"("topk_group": 9)"),
               "cfg: topk_group: must be between 1 and n_group (8), got 9");
  expect_error(with(v3, R"("num_experts_per_tok": 8)", R"("num_experts_per_tok": 257)"),
               "cfg: num_experts_per_tok: must be between 1 and n_routed_experts (256), got 257");
  expect_error(with(v3, R"("first_k_dense_replace": 3)", R"("first_k_dense_replace": 62)"),
               "cfg: first_k_dense_replace: must be between 0 and num_hidden_layers (61), got 62");
  expect_error(
      with(v3, R"("topk_method": "noaux_tc")", R"("topk_method": "top2")"),
      "cfg: topk_method: must be one of greedy, group_limited_greedy, noaux_tc, got 'top2'");
  expect_error(with(v3, R"("routed_scaling_factor": 2.5)", R"("routed_scaling_factor": -1)"),
               "cfg: routed_scaling_factor: must be a positive finite number");
  expect_error(with(v3, R"("vocab_size": 129280,)", ""), "cfg: vocab_size: missing");
  expect_error(with(kV2Lite, R"("moe_layer_freq": 1)", R"("moe_layer_freq": 0)"),
               "cfg: moe_layer_freq: must be between 1 and 4096, got 0");
}

TEST(DeepseekConfig, PresetsAreValid) {
  const DeepseekConfig c = model_preset("deepseek-v2-lite-model", 4);
  EXPECT_EQ(c.num_layers, 4);
  EXPECT_EQ(c.router.num_experts, 64);
  EXPECT_EQ(c.router, (RouterConfig{64, 6, ScoringFunc::kSoftmax, TopkMethod::kGreedy, 1, 1}));
  EXPECT_EQ(c.attention, preset_config("deepseek-v2-lite"));
  EXPECT_EQ(c.eos_token_id, 100001);
  const DeepseekConfig t = model_preset("tiny-moe-model", 0);
  EXPECT_EQ(t.num_layers, 3);
  EXPECT_EQ(t.router,
            (RouterConfig{8, 2, ScoringFunc::kSigmoid, TopkMethod::kNoauxTc, 4, 2, true, 2.5}));
  EXPECT_EQ(t.bos_token_id, -1);
  EXPECT_THROW(model_preset("nope", 0), Error);
}

// Hugging Face writes None as null, may list several eos ids and spells greedy "gready".
TEST(DeepseekConfig, ReadsHuggingFaceSpellings) {
  std::string text = with(kV2Lite, R"("topk_method": "greedy")", R"("topk_method": "gready")");
  text = with(text, R"("eos_token_id": 100001)", R"("eos_token_id": [100001, 7])");
  text = with(text, R"("n_shared_experts": 2)", R"("n_shared_experts": null)");
  const DeepseekConfig c = parse_deepseek_config(text, "cfg");
  EXPECT_EQ(c.router.method, TopkMethod::kGreedy);
  EXPECT_EQ(c.eos_token_id, 100001);
  EXPECT_EQ(c.n_shared_experts, 0);
  expect_error(with(kV2Lite, R"("eos_token_id": 100001)", R"("eos_token_id": [])"),
               "cfg: eos_token_id: must be an integer or a list of integers");
  expect_error(with(kV2Lite, R"("vocab_size": 102400)", R"("vocab_size": null)"),
               "cfg: vocab_size: missing");
}

TEST(DeepseekConfig, DenseModelsNeedNoExpertFields) {
  std::string text = with(kV2Lite, R"("n_routed_experts": 64)", R"("n_routed_experts": 0)");
  text = with(text, R"("moe_intermediate_size": 1408,)", "");
  text = with(text, R"("num_experts_per_tok": 6,)", "");
  const DeepseekConfig c = parse_deepseek_config(text, "cfg");
  EXPECT_FALSE(c.is_moe_layer(1));
  EXPECT_EQ(count_model(c).moe_layers, 0);
}

TEST(DeepseekConfig, JsonRoundTrips) {
  std::string v32 = v3_like("deepseek_v32", R"(, "index_n_heads": 64, "index_head_dim": 128,
      "index_topk": 2048)");
  v32 = with(v32, "DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM");
  for (const DeepseekConfig& c :
       {parse_deepseek_config(kV2Lite, "v2lite"), parse_deepseek_config(v3_like("kimi_k2"), "v3"),
        parse_deepseek_config(v32, "v32"), model_preset("tiny-moe-model", 2)}) {
    const std::string json = deepseek_config_to_json(c);
    EXPECT_EQ(parse_deepseek_config(json, "round trip"), c) << json;
  }
}

TEST(DeepseekConfig, PrintsEveryField) {
  const std::string s = model_preset("tiny-moe-model", 0).to_string();
  EXPECT_EQ(s.rfind("architecture: DeepseekV3ForCausalLM\nmodel_type: deepseek_v3\n", 0), 0u) << s;
  for (const char* line : {"\nnum_hidden_layers: 3\n", "\ntopk_method: noaux_tc\n",
                           "\nscoring_func: sigmoid\n", "\nattention.hidden_size: 64\n"}) {
    EXPECT_NE(s.find(line), std::string::npos) << line << " in\n" << s;
  }
  EXPECT_EQ(s.find("index_topk"), std::string::npos) << s;  // V3 has no indexer
}

}  // namespace
}  // namespace mla
