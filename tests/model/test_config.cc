#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "mla/config.h"
#include "mla/error.h"

namespace mla {
namespace {

const char* kV2LiteJson = R"({
  "hidden_size": 2048, "num_attention_heads": 16, "q_lora_rank": null, "kv_lora_rank": 512,
  "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "rms_norm_eps": 1e-06,
  "rope_theta": 10000, "max_position_embeddings": 163840, "num_hidden_layers": 27,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                   "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096, "type": "yarn"}
})";

std::string error_of(const std::string& json) {
  try {
    parse_config_json(json, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

TEST(Config, ParsesV2LiteStyle) {
  MlaConfig c = parse_config_json(kV2LiteJson, "cfg.json");
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.num_heads, 16);
  EXPECT_FALSE(c.has_q_lora());
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.latent_dim(), 576);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kYarn);
  EXPECT_TRUE(c.yarn_active());
  EXPECT_DOUBLE_EQ(c.rope_scaling.mscale_all_dim, 0.707);
  const double m = 0.1 * 0.707 * std::log(40.0) + 1.0;
  EXPECT_NEAR(c.softmax_scale(), m * m / std::sqrt(192.0), 1e-15);
}

TEST(Config, ParsesV3StyleWithQueryCompressionAndRopeType) {
  std::string json = replace(kV2LiteJson, "\"q_lora_rank\": null", "\"q_lora_rank\": 1536");
  json = replace(json, "\"type\": \"yarn\"", "\"rope_type\": \"yarn\"");
  MlaConfig c = parse_config_json(json, "cfg.json");
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_TRUE(c.has_q_lora());
}

TEST(Config, ReadsEveryRopeScalingField) {
  std::string json = replace(kV2LiteJson, "\"original_max_position_embeddings\": 4096",
                             "\"original_max_position_embeddings\": 8192");
  json = replace(json, "\"beta_fast\": 32", "\"beta_fast\": 16");
  json = replace(json, "\"beta_slow\": 1", "\"beta_slow\": 2");
  MlaConfig c = parse_config_json(json, "cfg.json");
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.rope_scaling.beta_fast, 16.0);
  EXPECT_EQ(c.rope_scaling.beta_slow, 2.0);
  EXPECT_EQ(c.rope_scaling.factor, 40.0);
  EXPECT_EQ(c.rope_scaling.mscale, 0.707);
}

TEST(Config, NoRopeScalingMeansPlainScale) {
  std::string json = replace(kV2LiteJson, "\"rope_scaling\"", "\"unused\"");
  MlaConfig c = parse_config_json(json, "cfg.json");
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_FALSE(c.yarn_active());
  EXPECT_DOUBLE_EQ(c.softmax_scale(), 1.0 / std::sqrt(192.0));
}

TEST(Config, YarnInactiveWhenRunFitsOriginalLength) {
  std::string json = replace(kV2LiteJson, "\"max_position_embeddings\": 163840",
                             "\"max_position_embeddings\": 4096");
  EXPECT_FALSE(parse_config_json(json, "cfg.json").yarn_active());
}

TEST(Config, V3PresetSoftmaxScale) {
  MlaConfig c = preset_config("deepseek-v3");
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_heads, 128);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_NEAR(c.softmax_scale(), 0.1352337, 1e-6);  // 192^-0.5 * (0.1 ln 40 + 1)^2
}

TEST(Config, PresetsAreValidAndUnknownIsNamed) {
  for (const auto& name : preset_names()) EXPECT_NO_THROW(preset_config(name)) << name;
  EXPECT_EQ(preset_config("deepseek-v2").hidden_size, 5120);
  EXPECT_EQ(preset_config("deepseek-v2-lite").num_heads, 16);
  try {
    preset_config("gpt-9");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "preset: unknown name 'gpt-9' (known: deepseek-v2-lite, deepseek-v2, deepseek-v3, tiny)");
  }
}

TEST(Config, JsonRoundTrip) {
  for (const auto& name : preset_names()) {
    MlaConfig c = preset_config(name);
    MlaConfig back = parse_config_json(config_to_json(c), "roundtrip");
    EXPECT_EQ(config_to_json(back), config_to_json(c)) << name;
    EXPECT_DOUBLE_EQ(back.softmax_scale(), c.softmax_scale());
  }
}

TEST(Config, ErrorsNameFieldAndReason) {
  EXPECT_EQ(
      error_of(replace(kV2LiteJson, "\"num_attention_heads\": 16", "\"num_attention_heads\": 0")),
      "cfg.json: num_attention_heads: must be positive, got 0");
  EXPECT_EQ(error_of(replace(kV2LiteJson, "\"qk_rope_head_dim\": 64", "\"qk_rope_head_dim\": 63")),
            "cfg.json: qk_rope_head_dim: must be even (RoPE rotates pairs), got 63");
  EXPECT_EQ(error_of(replace(kV2LiteJson, "\"type\": \"yarn\"", "\"type\": \"ntk\"")),
            "cfg.json: rope_scaling.type: unknown type 'ntk' (supported: yarn)");
  EXPECT_EQ(error_of(replace(kV2LiteJson, "\"kv_lora_rank\": 512,", "")),
            "cfg.json: kv_lora_rank: missing");
  EXPECT_EQ(error_of(replace(kV2LiteJson, "\"hidden_size\": 2048", "\"hidden_size\": \"big\"")),
            "cfg.json: hidden_size: must be an integer, got \"big\"");
  EXPECT_EQ(error_of(replace(kV2LiteJson, "\"q_lora_rank\": null", "\"q_lora_rank\": 0")),
            "cfg.json: q_lora_rank: must be null or positive, got 0");
  EXPECT_EQ(error_of(replace(kV2LiteJson, "\"v_head_dim\": 128", "\"v_head_dim\": -1")),
            "cfg.json: v_head_dim: must be positive, got -1");
  EXPECT_EQ(error_of(replace(kV2LiteJson, "\"factor\": 40", "\"factor\": 0.5")),
            "cfg.json: rope_scaling.factor: must be a finite number >= 1");
  EXPECT_EQ(error_of(replace(kV2LiteJson, "\"hidden_size\": 2048", "\"hidden_size\": 4000000")),
            "cfg.json: hidden_size: too large (> 2^20), got 4000000");
  EXPECT_EQ(error_of("[1, 2]"), "cfg.json: malformed JSON: the top level must be an object");
  EXPECT_EQ(error_of("{\"hidden_size\": ").rfind("cfg.json: malformed JSON: ", 0), 0u);
}

TEST(Config, NumbersBeyondDoubleAreMalformedNotACrash) {
  // Found by fuzz_config: nlohmann throws out_of_range (not parse_error) for this literal.
  EXPECT_EQ(error_of("{\"hidden_size\": 7e771536}").rfind("cfg.json: malformed JSON: ", 0), 0u);
  EXPECT_EQ(error_of("{\"hidden_size\": 18446744073709551616}").rfind("cfg.json: ", 0), 0u);
  const std::string bad_utf8 =
      error_of(replace(kV2LiteJson, "\"hidden_size\": 2048", "\"hidden_size\": \"\xff\""));
  EXPECT_EQ(bad_utf8.rfind("cfg.json: malformed JSON: ", 0), 0u);
  EXPECT_NE(bad_utf8.find("ill-formed UTF-8"), std::string::npos);
}

TEST(Config, MissingFileIsNamed) {
  try {
    load_config_json("/nonexistent/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/config.json: cannot open config file");
  }
}

}  // namespace
}  // namespace mla
