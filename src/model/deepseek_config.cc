// DeepseekConfig: a whole model's config.json (DeepSeek-V2, V3, V3.2, Kimi K2), its checks across
// fields, its JSON and the presets. Each field's name, default and rule are in visit_fields.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/fields_json.h"
#include "mla/error.h"
#include "mla/model.h"

namespace mla {
namespace {

using nlohmann::json;

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

// The defaults of Hugging Face's DeepseekV2Config / DeepseekV3Config for the keys a release may
// leave out.
DeepseekConfig defaults_for(const std::string& architecture) {
  DeepseekConfig c;
  c.architecture = architecture;
  const bool v2 = architecture == "DeepseekV2ForCausalLM";
  c.model_type = v2 ? "deepseek_v2" : "deepseek_v3";
  c.router.scoring = v2 ? ScoringFunc::kSoftmax : ScoringFunc::kSigmoid;
  c.router.method = v2 ? TopkMethod::kGreedy : TopkMethod::kNoauxTc;
  c.dsa = architecture == "DeepseekV32ForCausalLM";
  return c;
}

// Brings the Hugging Face spellings to the one form of the field list: null is an unset value
// (Python's None), a token id may be a list (the first is kept), and "gready" is the default
// topk_method of DeepseekV2Config.
void normalise(json& j, const std::string& source) {
  for (auto it = j.begin(); it != j.end();) {
    it = it->is_null() ? j.erase(it) : std::next(it);
  }
  for (const char* key : {"bos_token_id", "eos_token_id"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_array()) continue;
    if (it->empty() || !it->front().is_number_integer())
      fail(source, key, "must be an integer or a list of integers");
    *it = json(it->front());
  }
  auto method = j.find("topk_method");
  if (method != j.end() && *method == "gready") *method = "greedy";
}

// `c` holds the defaults of its architecture (and its attention); the keys of `j` override them.
void read_model_fields(DeepseekConfig& c, json j, const std::string& source) {
  normalise(j, source);
  read_json_fields(c, j, source);
}

DeepseekConfig parse_unchecked(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(source + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": malformed JSON: the top level must be an object");
  DeepseekConfig c = defaults_for(architecture_of(j, source));
  c.attention = parse_config_json(text, source);
  read_model_fields(c, std::move(j), source);
  c.validate(source);
  return c;
}

// The checks across fields; each field's own rule is in DeepseekConfig::visit_fields.
void validate_experts(const DeepseekConfig& c, const std::string& source) {
  const RouterConfig& r = c.router;
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
}

}  // namespace

void DeepseekConfig::validate(const std::string& source) const {
  attention.validate();
  validate_fields(*this, source);
  if (first_k_dense_replace < 0 || first_k_dense_replace > num_layers) {
    fail(source, "first_k_dense_replace",
         "must be between 0 and num_hidden_layers (" + std::to_string(num_layers) + "), got " +
             std::to_string(first_k_dense_replace));
  }
  if (router.num_experts > 0) validate_experts(*this, source);
  if (dsa) {
    try {
      dsa_config.validate(attention);
    } catch (const Error& e) {
      throw Error(source + ": " + e.what());
    }
  }
}

std::string DeepseekConfig::to_string() const {
  std::string attention_lines;
  std::istringstream lines(attention.to_string());
  for (std::string line; std::getline(lines, line);) attention_lines += "attention." + line + "\n";
  return "architecture: " + architecture + "\n" + fields_to_string(*this) + attention_lines;
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

std::string deepseek_config_to_json(const DeepseekConfig& c) {
  nlohmann::ordered_json j;
  j["architectures"] = nlohmann::ordered_json::array({c.architecture});
  j.update(nlohmann::ordered_json::parse(config_to_json(c.attention)));
  j.update(write_json_fields(c));
  return j.dump(2);
}

bool is_whole_model_config_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    return j.is_object() && j.contains("architectures");
  } catch (const json::exception&) {
    return false;
  }
}

namespace {

// A preset is an attention preset and the whole-model keys of its config.json, read by the same
// field list as a checkpoint's.
struct ModelPreset {
  const char* name;
  const char* attention;
  const char* fields;
};

constexpr ModelPreset kModelPresets[] = {
    {"deepseek-v2-lite-model", "deepseek-v2-lite", R"({
      "architectures": ["DeepseekV2ForCausalLM"], "vocab_size": 102400, "num_hidden_layers": 27,
      "intermediate_size": 10944, "n_routed_experts": 64, "num_experts_per_tok": 6,
      "moe_intermediate_size": 1408, "n_shared_experts": 2, "first_k_dense_replace": 1,
      "bos_token_id": 100000, "eos_token_id": 100001})"},
    {"tiny-moe-model", "tiny", R"({
      "architectures": ["DeepseekV3ForCausalLM"], "vocab_size": 256, "num_hidden_layers": 3,
      "intermediate_size": 96, "n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 4,
      "topk_group": 2, "norm_topk_prob": true, "routed_scaling_factor": 2.5,
      "moe_intermediate_size": 32, "n_shared_experts": 1, "first_k_dense_replace": 1})"},
};

}  // namespace

DeepseekConfig model_preset(const std::string& name, int64_t layers) {
  for (const ModelPreset& p : kModelPresets) {
    if (name != p.name) continue;
    const std::string source = "preset " + name;
    const json j = json::parse(p.fields);
    DeepseekConfig c = defaults_for(architecture_of(j, source));
    c.attention = preset_config(p.attention);
    read_model_fields(c, j, source);
    if (layers > 0) c.num_layers = layers;
    c.first_k_dense_replace = std::min(c.first_k_dense_replace, c.num_layers);
    c.validate(source);
    return c;
  }
  std::string known;
  for (const ModelPreset& p : kModelPresets)
    known += (known.empty() ? "" : ", ") + std::string(p.name);
  throw Error("preset: unknown model '" + name + "' (known: " + known + ")");
}

}  // namespace mla
