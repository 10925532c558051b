// MlaConfig validation, config.json parsing and the named presets.
#include "mla/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/fields_json.h"
#include "io/json_text.h"
#include "mla/error.h"

namespace mla {
namespace {

// The checks across fields; each field's own rule is in MlaConfig::visit_fields.
void validate_config(const MlaConfig& c, const std::string& source) {
  validate_fields(c, source);
  if (c.qk_head_dim() <= 0) {
    fail(source, "qk_nope_head_dim", "qk_nope_head_dim + qk_rope_head_dim must be positive");
  }
}

// Hugging Face spells the kind "type" (older) or "rope_type" (newer), and "default" for none;
// brings rope_scaling to the form of RopeScaling::visit_fields (null for none).
void normalise_rope_scaling(nlohmann::json& j, const std::string& source) {
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return;
  if (!it->is_object()) fail(source, "rope_scaling", "must be an object or null");
  nlohmann::json& s = *it;
  std::string type;
  for (const char* key : {"type", "rope_type"}) {
    auto t = s.find(key);
    if (t != s.end()) {
      if (!t->is_string()) fail(source, "rope_scaling.type", "must be a string");
      type = t->get<std::string>();
      break;
    }
  }
  if (type.empty()) fail(source, "rope_scaling.type", "missing");
  if (type == "default" || type == "none") {
    s = nullptr;
    return;
  }
  if (type != "yarn") {
    fail(source, "rope_scaling.type", "unknown type '" + type + "' (supported: yarn)");
  }
  s.erase("rope_type");
  s["type"] = type;
}

MlaConfig base_deepseek() {
  MlaConfig c;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 163840;
  c.rope_scaling.type = RopeScalingType::kYarn;
  c.rope_scaling.factor = 40.0;
  c.rope_scaling.original_max_position_embeddings = 4096;
  c.rope_scaling.beta_fast = 32.0;
  c.rope_scaling.beta_slow = 1.0;
  return c;
}

}  // namespace

bool MlaConfig::yarn_active() const {
  return rope_scaling.type == RopeScalingType::kYarn && rope_scaling.factor > 1.0 &&
         max_position_embeddings > rope_scaling.original_max_position_embeddings;
}

double MlaConfig::softmax_scale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (yarn_active()) {
    double m = 0.1 * rope_scaling.mscale_all_dim * std::log(rope_scaling.factor) + 1.0;
    scale *= m * m;
  }
  return scale;
}

void MlaConfig::validate() const {
  validate_config(*this, "config");
}

std::string MlaConfig::to_string() const {
  std::ostringstream out;
  out << fields_to_string(*this) << "yarn_active: " << (yarn_active() ? "true" : "false") << "\n"
      << "softmax_scale: " << softmax_scale() << "\n";
  return out.str();
}

namespace {

MlaConfig parse_unchecked(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": malformed JSON: the top level must be an object");
  normalise_rope_scaling(j, source);
  MlaConfig c;
  read_json_fields(c, j, source);
  // Hugging Face DeepSeek configs carry "attention_bias" (always false in released models); its
  // biases are not the same set as ours, so a true value is refused rather than misread.
  auto bias = j.find("attention_bias");
  if (bias != j.end() && !bias->is_null()) {
    if (!bias->is_boolean()) {
      fail(source, "attention_bias", "must be true or false, got " + json_text(*bias));
    }
    if (bias->get<bool>())
      fail(source, "attention_bias", "true is not supported (use projection_bias)");
  }
  validate_config(c, source);
  return c;
}

}  // namespace

MlaConfig parse_config_json(const std::string& text, const std::string& source) {
  try {
    return parse_unchecked(text, source);
  } catch (const nlohmann::json::exception& e) {
    // Any value nlohmann cannot convert (an integer beyond 64 bits, ...) is bad input too.
    throw Error(source + ": malformed JSON: " + e.what());
  }
}

MlaConfig load_config_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config_json(text.str(), path);
}

std::string config_to_json(const MlaConfig& c) {
  nlohmann::ordered_json j = write_json_fields(c);
  if (c.rope_scaling.type == RopeScalingType::kNone) j["rope_scaling"] = nullptr;
  return j.dump(2);
}

MlaConfig preset_config(const std::string& name) {
  MlaConfig c;
  if (name == "deepseek-v2-lite") {
    c = base_deepseek();
    c.hidden_size = 2048;
    c.num_heads = 16;
    c.q_lora_rank = 0;
    c.rope_scaling.mscale = 0.707;
    c.rope_scaling.mscale_all_dim = 0.707;
  } else if (name == "deepseek-v2") {
    c = base_deepseek();
    c.hidden_size = 5120;
    c.num_heads = 128;
    c.q_lora_rank = 1536;
    c.rope_scaling.mscale = 0.707;
    c.rope_scaling.mscale_all_dim = 0.707;
  } else if (name == "deepseek-v3") {
    c = base_deepseek();
    c.hidden_size = 7168;
    c.num_heads = 128;
    c.q_lora_rank = 1536;
    c.rope_scaling.mscale = 1.0;
    c.rope_scaling.mscale_all_dim = 1.0;
  } else if (name == "tiny") {
    c.hidden_size = 64;
    c.num_heads = 4;
    c.q_lora_rank = 32;
    c.kv_lora_rank = 32;
    c.qk_nope_head_dim = 16;
    c.qk_rope_head_dim = 8;
    c.v_head_dim = 16;
    c.max_position_embeddings = 1024;
  } else {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("preset: unknown name '" + name + "' (known: " + known + ")");
  }
  c.validate();
  return c;
}

std::vector<std::string> preset_names() {
  return {"deepseek-v2-lite", "deepseek-v2", "deepseek-v3", "tiny"};
}

}  // namespace mla
