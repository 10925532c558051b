// MlaConfig: every hyper-parameter of one Multi-head Latent Attention layer.
// Field names follow Hugging Face DeepSeek config.json; see docs/architecture.md for the symbols.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mla/fields.h"

namespace mla {

enum class RopeScalingType { kNone, kYarn };
inline constexpr EnumName<RopeScalingType> kRopeScalingTypeNames[] = {
    {RopeScalingType::kNone, "none"}, {RopeScalingType::kYarn, "yarn"}};
constexpr std::span<const EnumName<RopeScalingType>> enum_names(RopeScalingType) {
  return kRopeScalingTypeNames;
}

// The normalisation of the latents (c_kv, and the query latent under query compression).
// DeepSeek uses RMSNorm; RopelessMLA uses LayerNorm; others use none.
enum class LatentNorm { kRmsNorm, kLayerNorm, kNone };
inline constexpr EnumName<LatentNorm> kLatentNormNames[] = {{LatentNorm::kRmsNorm, "rmsnorm"},
                                                            {LatentNorm::kLayerNorm, "layernorm"},
                                                            {LatentNorm::kNone, "none"}};
constexpr std::span<const EnumName<LatentNorm>> enum_names(LatentNorm) {
  return kLatentNormNames;
}
inline const char* latent_norm_name(LatentNorm norm) {
  return enum_name(norm);
}

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;

  // The fields after `type` matter (and are checked) only under YaRN.
  template <class V>
  void visit_fields(V& v) {
    const bool yarn = type == RopeScalingType::kYarn;
    v("type", type);
    v("factor", factor, {.min = 1, .active = yarn});
    v("original_max_position_embeddings", original_max_position_embeddings,
      {.min = 1, .active = yarn});
    v("beta_fast", beta_fast, {.min = 0, .min_open = true, .active = yarn});
    v("beta_slow", beta_slow, {.min = 0, .min_open = true, .active = yarn});
    v("mscale", mscale, {.active = yarn});
    v("mscale_all_dim", mscale_all_dim, {.active = yarn});
  }
  bool operator==(const RopeScaling&) const = default;
};

struct MlaConfig {
  int64_t hidden_size = 0;       // d
  int64_t num_heads = 0;         // H (num_attention_heads)
  int64_t q_lora_rank = 0;       // d_cq; 0 means no query compression (config.json null)
  int64_t kv_lora_rank = 0;      // d_c, the cached latent width
  int64_t qk_nope_head_dim = 0;  // d_n
  int64_t qk_rope_head_dim = 0;  // d_r, shared rotary key width
  int64_t v_head_dim = 0;        // d_v
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 4096;  // the run's maximum length (decides YaRN)
  RopeScaling rope_scaling;
  // Beyond DeepSeek (the systems of presets.h need them; defaults are DeepSeek's).
  LatentNorm latent_norm = LatentNorm::kRmsNorm;  // its epsilon is rms_norm_eps whatever its kind
  bool projection_bias = false;    // a bias on every projection: q/q_a/q_b, kv_a, kv_b, o
  int64_t output_size = 0;         // o_proj's output width; 0 means hidden_size
  double attention_dropout = 0.0;  // on the attention probabilities, training only

  int64_t out_size() const { return output_size > 0 ? output_size : hidden_size; }
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  int64_t latent_dim() const { return kv_lora_rank + qk_rope_head_dim; }  // cached per token
  bool has_q_lora() const { return q_lora_rank > 0; }
  // YaRN is on when configured with factor > 1 and the run may exceed the original length.
  bool yarn_active() const;
  // (d_n + d_r)^-0.5 * m^2 with m = 0.1 * mscale_all_dim * ln(factor) + 1 when YaRN is on.
  double softmax_scale() const;

  // Cache numbers per token for one layer: MLA latent (d_c + d_r), naive/MHA H*(d_n+d_r+d_v).
  int64_t latent_cache_numbers_per_token() const { return latent_dim(); }
  int64_t mha_cache_numbers_per_token() const { return num_heads * (qk_head_dim() + v_head_dim); }

  // Every field once, with its config.json name and its rule: the list behind validate(),
  // to_string(), config_to_json / parse_config_json and the Python properties.
  template <class V>
  void visit_fields(V& v) {
    constexpr double kMaxWidth = 1 << 20;  // products of widths stay far from 64-bit overflow
    v("hidden_size", hidden_size, {.min = 1, .max = kMaxWidth, .required = true});
    v("num_attention_heads", num_heads,
      {.min = 1, .max = kMaxWidth, .required = true, .py_name = "num_heads"});
    v("q_lora_rank", q_lora_rank,
      {.min = 1, .max = kMaxWidth, .zero_is_unset = true, .null_when_unset = true});
    v("kv_lora_rank", kv_lora_rank, {.min = 1, .max = kMaxWidth, .required = true});
    v("qk_nope_head_dim", qk_nope_head_dim, {.min = 0, .max = kMaxWidth, .required = true});
    v("qk_rope_head_dim", qk_rope_head_dim,
      {.min = 0, .max = kMaxWidth, .even = true, .required = true});
    v("v_head_dim", v_head_dim, {.min = 1, .max = kMaxWidth, .required = true});
    v("rms_norm_eps", rms_norm_eps, {.min = 0, .min_open = true});
    v("rope_theta", rope_theta, {.min = 1, .min_open = true});
    v("max_position_embeddings", max_position_embeddings, {.min = 1});
    v("rope_scaling", rope_scaling);
    v("latent_norm", latent_norm, {.omit_default = true});
    v("projection_bias", projection_bias, {.omit_default = true});
    v("output_size", output_size,
      {.min = 1, .max = kMaxWidth, .zero_is_unset = true, .omit_default = true});
    v("attention_dropout", attention_dropout,
      {.min = 0, .max = 1, .max_open = true, .omit_default = true});
  }
  bool operator==(const MlaConfig&) const = default;

  // Throws mla::Error "config: <field>: <reason>" for the first invalid field.
  void validate() const;
  std::string to_string() const;  // multi-line, one "field: value" per line
};

// Parses a Hugging Face config.json (DeepSeek-V2, V2-Lite, V3 style) and validates it.
// Errors: "<path>: <reason>" for unreadable or malformed JSON; "<path>: <field>: <reason>".
MlaConfig load_config_json(const std::string& path);
MlaConfig parse_config_json(const std::string& text, const std::string& source_name);
std::string config_to_json(const MlaConfig& config);  // round-trips through parse_config_json

// Named presets of real model attention shapes: "deepseek-v2-lite", "deepseek-v2",
// "deepseek-v3", plus "tiny" (a small shape for demos and tests).
MlaConfig preset_config(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace mla
