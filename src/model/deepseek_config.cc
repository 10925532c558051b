// DeepseekConfig: a whole model's config.json (DeepSeek-V2, V3, V3.2, Kimi K2), its checks
// and presets.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/json_text.h"
#include "mla/error.h"
#include "mla/model.h"

namespace mla {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& field,
                       const std::string& reason) {
  throw Error(source + ": " + field + ": " + reason);
}

// An integer field; absent or null gives `fallback` unless required.
int64_t get_int(const json& j, const std::string& source, const char* key, bool required,
                int64_t fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(source, key, "missing");
    return fallback;
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    const double v = it->get<double>();
    if (v == std::floor(v) && std::fabs(v) < 9e15) return static_cast<int64_t>(v);
  }
  fail(source, key, "must be an integer, got " + json_text(*it));
}

double get_number(const json& j, const std::string& source, const char* key, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail(source, key, "must be a number, got " + json_text(*it));
  return it->get<double>();
}

bool get_bool(const json& j, const std::string& source, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(source, key, "must be true or false, got " + json_text(*it));
  return it->get<bool>();
}

std::string get_string(const json& j, const std::string& source, const char* key,
                       const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail(source, key, "must be a string, got " + json_text(*it));
  return it->get<std::string>();
}

// eos_token_id may be a list in some releases; the first entry is kept.
int64_t get_token_id(const json& j, const std::string& source, const char* key) {
  auto it = j.find(key);
  if (it != j.end() && it->is_array()) {
    if (it->empty() || !it->front().is_number_integer())
      fail(source, key, "must be an integer or a list of integers");
    return it->front().get<int64_t>();
  }
  return get_int(j, source, key, false, -1);
}

const char* const kArchitectures[] = {"DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM",
                                      "DeepseekV32ForCausalLM"};

std::string architecture_of(const json& j, const std::string& source) {
  auto it = j.find("architectures");
  if (it == j.end() || !it->is_array() || it->empty() || !it->front().is_string()) {
    fail(source, "architectures", "missing (a whole-model config.json names its architecture)");
  }
  const std::string arch = it->front().get<std::string>();
  for (const char* known : kArchitectures) {
    if (arch == known) return arch;
  }
  fail(source, "architectures",
       "unknown architecture '" + arch +
           "' (supported: DeepseekV2ForCausalLM, DeepseekV3ForCausalLM, DeepseekV32ForCausalLM)");
}

DeepseekConfig parse_unchecked(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(source + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": malformed JSON: the top level must be an object");
  DeepseekConfig c;
  c.architecture = architecture_of(j, source);
  const bool v2 = c.architecture == "DeepseekV2ForCausalLM";
  c.model_type = get_string(j, source, "model_type", v2 ? "deepseek_v2" : "deepseek_v3");
  c.attention = parse_config_json(text, source);
  c.vocab_size = get_int(j, source, "vocab_size", true, 0);
  c.num_layers = get_int(j, source, "num_hidden_layers", true, 0);
  c.intermediate_size = get_int(j, source, "intermediate_size", true, 0);
  RouterConfig& r = c.router;
  r.num_experts = get_int(j, source, "n_routed_experts", false, 0);
  c.moe_intermediate_size = get_int(j, source, "moe_intermediate_size", r.num_experts > 0, 0);
  c.first_k_dense_replace = get_int(j, source, "first_k_dense_replace", false, 0);
  c.moe_layer_freq = get_int(j, source, "moe_layer_freq", false, 1);
  c.n_shared_experts = get_int(j, source, "n_shared_experts", false, 0);
  r.top_k = get_int(j, source, "num_experts_per_tok", r.num_experts > 0, 0);
  const std::string scoring = get_string(j, source, "scoring_func", v2 ? "softmax" : "sigmoid");
  if (scoring == "softmax") {
    r.scoring = ScoringFunc::kSoftmax;
  } else if (scoring == "sigmoid") {
    r.scoring = ScoringFunc::kSigmoid;
  } else {
    fail(source, "scoring_func", "must be softmax or sigmoid, got '" + scoring + "'");
  }
  const std::string method = get_string(j, source, "topk_method", v2 ? "greedy" : "noaux_tc");
  // "gready" is the default spelling of Hugging Face's DeepseekV2Config.
  if (method == "greedy" || method == "gready") {
    r.method = TopkMethod::kGreedy;
  } else if (method == "group_limited_greedy") {
    r.method = TopkMethod::kGroupLimitedGreedy;
  } else if (method == "noaux_tc") {
    r.method = TopkMethod::kNoauxTc;
  } else {
    fail(source, "topk_method",
         "must be greedy, group_limited_greedy or noaux_tc, got '" + method + "'");
  }
  r.n_group = get_int(j, source, "n_group", false, 1);
  r.topk_group = get_int(j, source, "topk_group", false, 1);
  r.norm_topk_prob = get_bool(j, source, "norm_topk_prob", false);
  r.routed_scaling_factor = get_number(j, source, "routed_scaling_factor", 1.0);
  c.num_nextn_predict_layers = get_int(j, source, "num_nextn_predict_layers", false, 0);
  c.tie_word_embeddings = get_bool(j, source, "tie_word_embeddings", false);
  c.bos_token_id = get_token_id(j, source, "bos_token_id");
  c.eos_token_id = get_token_id(j, source, "eos_token_id");
  if (c.architecture == "DeepseekV32ForCausalLM") {
    c.dsa = true;
    c.dsa_config.num_heads = get_int(j, source, "index_n_heads", true, 0);
    c.dsa_config.head_dim = get_int(j, source, "index_head_dim", true, 0);
    c.dsa_config.top_k = get_int(j, source, "index_topk", true, 0);
  }
  c.validate(source);
  return c;
}

}  // namespace

const char* scoring_func_name(ScoringFunc f) {
  return f == ScoringFunc::kSoftmax ? "softmax" : "sigmoid";
}

const char* topk_method_name(TopkMethod m) {
  switch (m) {
    case TopkMethod::kGreedy:
      return "greedy";
    case TopkMethod::kGroupLimitedGreedy:
      return "group_limited_greedy";
    case TopkMethod::kNoauxTc:
      return "noaux_tc";
  }
  return "?";
}

void DeepseekConfig::validate(const std::string& source) const {
  attention.validate();
  constexpr int64_t kMaxWidth = int64_t{1} << 20;
  const auto positive = [&](const char* field, int64_t v, int64_t max) {
    if (v < 1 || v > max) {
      fail(source, field,
           "must be between 1 and " + std::to_string(max) + ", got " + std::to_string(v));
    }
  };
  positive("vocab_size", vocab_size, int64_t{1} << 24);
  positive("num_hidden_layers", num_layers, 4096);
  positive("intermediate_size", intermediate_size, kMaxWidth);
  positive("moe_layer_freq", moe_layer_freq, 4096);
  if (first_k_dense_replace < 0 || first_k_dense_replace > num_layers) {
    fail(source, "first_k_dense_replace",
         "must be between 0 and num_hidden_layers (" + std::to_string(num_layers) + "), got " +
             std::to_string(first_k_dense_replace));
  }
  if (num_nextn_predict_layers < 0 || num_nextn_predict_layers > 64)
    fail(source, "num_nextn_predict_layers", "must be between 0 and 64");
  const RouterConfig& r = router;
  if (r.num_experts < 0 || r.num_experts > 65536)
    fail(source, "n_routed_experts", "must be between 0 and 65536");
  if (r.num_experts == 0) return;
  positive("moe_intermediate_size", moe_intermediate_size, kMaxWidth);
  if (n_shared_experts < 0 || n_shared_experts > 64)
    fail(source, "n_shared_experts", "must be between 0 and 64");
  if (r.top_k < 1 || r.top_k > r.num_experts) {
    fail(source, "num_experts_per_tok",
         "must be between 1 and n_routed_experts (" + std::to_string(r.num_experts) + "), got " +
             std::to_string(r.top_k));
  }
  if (r.n_group < 1 || r.n_group > 64 || r.num_experts % r.n_group != 0) {
    fail(source, "n_group",
         "must be at most 64 and divide n_routed_experts (" + std::to_string(r.num_experts) +
             "), got " + std::to_string(r.n_group));
  }
  if (r.topk_group < 1 || r.topk_group > r.n_group) {
    fail(source, "topk_group",
         "must be between 1 and n_group (" + std::to_string(r.n_group) + "), got " +
             std::to_string(r.topk_group));
  }
  const int64_t per_group = r.num_experts / r.n_group;
  if (r.method != TopkMethod::kGreedy && r.n_group > 1 && r.top_k > r.topk_group * per_group) {
    fail(source, "num_experts_per_tok",
         "exceeds the experts of the topk_group kept groups (" +
             std::to_string(r.topk_group * per_group) + ")");
  }
  if (r.method == TopkMethod::kNoauxTc && r.n_group > 1 && per_group < 2)
    fail(source, "n_group", "noaux_tc scores a group by its two best experts: groups need two");
  if (!(r.routed_scaling_factor > 0.0) || !std::isfinite(r.routed_scaling_factor))
    fail(source, "routed_scaling_factor", "must be a positive finite number");
  if (dsa) {
    try {
      dsa_config.validate(attention);
    } catch (const Error& e) {
      throw Error(source + ": " + e.what());
    }
  }
}

DeepseekConfig parse_deepseek_config(const std::string& text, const std::string& source) {
  try {
    return parse_unchecked(text, source);
  } catch (const json::exception& e) {
    throw Error(source + ": malformed JSON: " + e.what());
  }
}

DeepseekConfig load_deepseek_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_deepseek_config(text.str(), path);
}

bool is_whole_model_config_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    return j.is_object() && j.contains("architectures");
  } catch (const json::exception&) {
    return false;
  }
}

DeepseekConfig model_preset(const std::string& name, int64_t layers) {
  DeepseekConfig c;
  if (name == "deepseek-v2-lite-model") {
    c.architecture = "DeepseekV2ForCausalLM";
    c.model_type = "deepseek_v2";
    c.attention = preset_config("deepseek-v2-lite");
    c.vocab_size = 102400;
    c.num_layers = 27;
    c.intermediate_size = 10944;
    c.moe_intermediate_size = 1408;
    c.first_k_dense_replace = 1;
    c.n_shared_experts = 2;
    c.router = RouterConfig{64, 6, ScoringFunc::kSoftmax, TopkMethod::kGreedy, 1, 1, false, 1.0};
    c.bos_token_id = 100000;
    c.eos_token_id = 100001;
  } else if (name == "tiny-moe-model") {
    c.architecture = "DeepseekV3ForCausalLM";
    c.model_type = "deepseek_v3";
    c.attention = preset_config("tiny");
    c.vocab_size = 256;
    c.num_layers = 3;
    c.intermediate_size = 96;
    c.moe_intermediate_size = 32;
    c.first_k_dense_replace = 1;
    c.n_shared_experts = 1;
    c.router = RouterConfig{8, 2, ScoringFunc::kSigmoid, TopkMethod::kNoauxTc, 4, 2, true, 2.5};
  } else {
    throw Error("preset: unknown model '" + name +
                "' (known: deepseek-v2-lite-model, tiny-moe-model)");
  }
  if (layers > 0) c.num_layers = layers;
  c.first_k_dense_replace = std::min(c.first_k_dense_replace, c.num_layers);
  c.validate("preset " + name);
  return c;
}

}  // namespace mla
