// MlaConfig validation, config.json parsing and the named presets.
#include "mla/config.h"

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/json_text.h"
#include "mla/error.h"

namespace mla {
namespace {

[[noreturn]] void fail_field(const std::string& source, const std::string& field,
                             const std::string& reason) {
  throw Error(source + ": " + field + ": " + reason);
}

void require_positive(const std::string& source, const char* field, int64_t value) {
  if (value <= 0) fail_field(source, field, "must be positive, got " + std::to_string(value));
}

void validate_config(const MlaConfig& c, const std::string& source) {
  require_positive(source, "hidden_size", c.hidden_size);
  require_positive(source, "num_attention_heads", c.num_heads);
  if (c.q_lora_rank < 0) fail_field(source, "q_lora_rank", "must be null or positive");
  require_positive(source, "kv_lora_rank", c.kv_lora_rank);
  if (c.qk_nope_head_dim < 0) fail_field(source, "qk_nope_head_dim", "must not be negative");
  if (c.qk_rope_head_dim < 0) fail_field(source, "qk_rope_head_dim", "must not be negative");
  if (c.qk_rope_head_dim % 2 != 0) {
    fail_field(source, "qk_rope_head_dim",
               "must be even (RoPE rotates pairs), got " + std::to_string(c.qk_rope_head_dim));
  }
  if (c.qk_head_dim() <= 0) {
    fail_field(source, "qk_nope_head_dim", "qk_nope_head_dim + qk_rope_head_dim must be positive");
  }
  require_positive(source, "v_head_dim", c.v_head_dim);
  // Bound every width so that products of widths cannot overflow 64-bit sizes.
  constexpr int64_t kMaxWidth = int64_t{1} << 20;
  const std::pair<const char*, int64_t> widths[] = {{"hidden_size", c.hidden_size},
                                                    {"num_attention_heads", c.num_heads},
                                                    {"q_lora_rank", c.q_lora_rank},
                                                    {"kv_lora_rank", c.kv_lora_rank},
                                                    {"qk_nope_head_dim", c.qk_nope_head_dim},
                                                    {"qk_rope_head_dim", c.qk_rope_head_dim},
                                                    {"v_head_dim", c.v_head_dim}};
  for (const auto& [name, value] : widths) {
    if (value > kMaxWidth)
      fail_field(source, name, "too large (> 2^20), got " + std::to_string(value));
  }
  if (!(c.rms_norm_eps > 0.0) || !std::isfinite(c.rms_norm_eps)) {
    fail_field(source, "rms_norm_eps", "must be a positive finite number");
  }
  if (!(c.rope_theta > 1.0) || !std::isfinite(c.rope_theta)) {
    fail_field(source, "rope_theta", "must be a finite number greater than 1");
  }
  require_positive(source, "max_position_embeddings", c.max_position_embeddings);
  if (c.output_size < 0) {
    fail_field(source, "output_size", "must be positive, got " + std::to_string(c.output_size));
  }
  if (c.output_size > kMaxWidth) {
    fail_field(source, "output_size", "too large (> 2^20), got " + std::to_string(c.output_size));
  }
  if (!(c.attention_dropout >= 0.0 && c.attention_dropout < 1.0)) {
    std::ostringstream value;
    value << c.attention_dropout;
    fail_field(source, "attention_dropout", "must be in [0, 1), got " + value.str());
  }
  const RopeScaling& r = c.rope_scaling;
  if (r.type == RopeScalingType::kYarn) {
    if (!(r.factor >= 1.0) || !std::isfinite(r.factor)) {
      fail_field(source, "rope_scaling.factor", "must be a finite number >= 1");
    }
    require_positive(source, "rope_scaling.original_max_position_embeddings",
                     r.original_max_position_embeddings);
    if (!(r.beta_fast > 0.0) || !std::isfinite(r.beta_fast)) {
      fail_field(source, "rope_scaling.beta_fast", "must be a positive finite number");
    }
    if (!(r.beta_slow > 0.0) || !std::isfinite(r.beta_slow)) {
      fail_field(source, "rope_scaling.beta_slow", "must be a positive finite number");
    }
    if (!std::isfinite(r.mscale) || !std::isfinite(r.mscale_all_dim)) {
      fail_field(source, "rope_scaling.mscale", "must be finite");
    }
  }
}

// Reads an integer field; `null` maps to `null_value` when allowed.
// `field` names the value in messages ("rope_scaling.factor"); `key` is its JSON key.
int64_t read_int(const nlohmann::json& j, const std::string& source, const std::string& field,
                 bool required, int64_t fallback, bool null_allowed = false,
                 const char* key = nullptr) {
  auto it = j.find(key != nullptr ? std::string(key) : field);
  if (it == j.end()) {
    if (required) fail_field(source, field, "missing");
    return fallback;
  }
  if (it->is_null()) {
    if (null_allowed) return 0;
    fail_field(source, field, "must be an integer, got null");
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    double v = it->get<double>();
    if (v == std::floor(v) && std::fabs(v) < 9e15) return static_cast<int64_t>(v);
  }
  fail_field(source, field, "must be an integer, got " + json_text(*it));
}

double read_number(const nlohmann::json& j, const std::string& source, const std::string& field,
                   const char* key, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail_field(source, field, "must be a number, got " + json_text(*it));
  return it->get<double>();
}

RopeScaling read_rope_scaling(const nlohmann::json& j, const std::string& source) {
  RopeScaling r;
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return r;
  if (!it->is_object()) fail_field(source, "rope_scaling", "must be an object or null");
  const nlohmann::json& s = *it;
  // Hugging Face spells the kind "type" (older) or "rope_type" (newer).
  std::string type;
  for (const char* key : {"type", "rope_type"}) {
    auto t = s.find(key);
    if (t != s.end()) {
      if (!t->is_string()) fail_field(source, "rope_scaling.type", "must be a string");
      type = t->get<std::string>();
      break;
    }
  }
  if (type.empty()) fail_field(source, "rope_scaling.type", "missing");
  if (type == "default" || type == "none") return r;
  if (type != "yarn") {
    fail_field(source, "rope_scaling.type", "unknown type '" + type + "' (supported: yarn)");
  }
  r.type = RopeScalingType::kYarn;
  r.factor = read_number(s, source, "rope_scaling.factor", "factor", 1.0);
  r.original_max_position_embeddings =
      read_int(s, source, "rope_scaling.original_max_position_embeddings", false, 4096, false,
               "original_max_position_embeddings");
  r.beta_fast = read_number(s, source, "rope_scaling.beta_fast", "beta_fast", 32.0);
  r.beta_slow = read_number(s, source, "rope_scaling.beta_slow", "beta_slow", 1.0);
  r.mscale = read_number(s, source, "rope_scaling.mscale", "mscale", 1.0);
  r.mscale_all_dim = read_number(s, source, "rope_scaling.mscale_all_dim", "mscale_all_dim", 0.0);
  return r;
}

LatentNorm read_latent_norm(const nlohmann::json& j, const std::string& source) {
  auto it = j.find("latent_norm");
  if (it == j.end() || it->is_null()) return LatentNorm::kRmsNorm;
  const std::string choices = "must be one of rmsnorm, layernorm, none";
  if (!it->is_string()) fail_field(source, "latent_norm", choices + ", got " + json_text(*it));
  const std::string name = it->get<std::string>();
  for (LatentNorm n : {LatentNorm::kRmsNorm, LatentNorm::kLayerNorm, LatentNorm::kNone}) {
    if (name == latent_norm_name(n)) return n;
  }
  fail_field(source, "latent_norm", choices + ", got '" + name + "'");
}

bool read_bool(const nlohmann::json& j, const std::string& source, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) fail_field(source, key, "must be true or false, got " + json_text(*it));
  return it->get<bool>();
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

const char* latent_norm_name(LatentNorm norm) {
  switch (norm) {
    case LatentNorm::kRmsNorm:
      return "rmsnorm";
    case LatentNorm::kLayerNorm:
      return "layernorm";
    case LatentNorm::kNone:
      return "none";
  }
  return "?";
}

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
  out << "hidden_size: " << hidden_size << "\n"
      << "num_attention_heads: " << num_heads << "\n"
      << "q_lora_rank: " << (has_q_lora() ? std::to_string(q_lora_rank) : "null") << "\n"
      << "kv_lora_rank: " << kv_lora_rank << "\n"
      << "qk_nope_head_dim: " << qk_nope_head_dim << "\n"
      << "qk_rope_head_dim: " << qk_rope_head_dim << "\n"
      << "v_head_dim: " << v_head_dim << "\n"
      << "rms_norm_eps: " << rms_norm_eps << "\n"
      << "rope_theta: " << rope_theta << "\n"
      << "max_position_embeddings: " << max_position_embeddings << "\n";
  if (rope_scaling.type == RopeScalingType::kYarn) {
    out << "rope_scaling: yarn factor=" << rope_scaling.factor
        << " original_max_position_embeddings=" << rope_scaling.original_max_position_embeddings
        << " beta_fast=" << rope_scaling.beta_fast << " beta_slow=" << rope_scaling.beta_slow
        << " mscale=" << rope_scaling.mscale << " mscale_all_dim=" << rope_scaling.mscale_all_dim
        << (yarn_active() ? " (active)" : " (inactive)") << "\n";
  } else {
    out << "rope_scaling: none\n";
  }
  out << "latent_norm: " << latent_norm_name(latent_norm) << "\n"
      << "projection_bias: " << (projection_bias ? "true" : "false") << "\n"
      << "output_size: " << out_size() << "\n"
      << "attention_dropout: " << attention_dropout << "\n";
  out << "softmax_scale: " << softmax_scale() << "\n";
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
  MlaConfig c;
  c.hidden_size = read_int(j, source, "hidden_size", true, 0);
  c.num_heads = read_int(j, source, "num_attention_heads", true, 0);
  c.q_lora_rank = read_int(j, source, "q_lora_rank", false, 0, /*null_allowed=*/true);
  c.kv_lora_rank = read_int(j, source, "kv_lora_rank", true, 0);
  c.qk_nope_head_dim = read_int(j, source, "qk_nope_head_dim", true, 0);
  c.qk_rope_head_dim = read_int(j, source, "qk_rope_head_dim", true, 0);
  c.v_head_dim = read_int(j, source, "v_head_dim", true, 0);
  c.rms_norm_eps = read_number(j, source, "rms_norm_eps", "rms_norm_eps", 1e-6);
  c.rope_theta = read_number(j, source, "rope_theta", "rope_theta", 10000.0);
  c.max_position_embeddings = read_int(j, source, "max_position_embeddings", false, 4096);
  c.rope_scaling = read_rope_scaling(j, source);
  c.latent_norm = read_latent_norm(j, source);
  c.projection_bias = read_bool(j, source, "projection_bias");
  // Hugging Face DeepSeek configs carry "attention_bias" (always false in released models); its
  // biases are not the same set as ours, so a true value is refused rather than misread.
  if (read_bool(j, source, "attention_bias")) {
    fail_field(source, "attention_bias", "true is not supported (use projection_bias)");
  }
  if (j.contains("output_size")) {
    c.output_size = read_int(j, source, "output_size", false, 0);
    if (c.output_size <= 0) {
      fail_field(source, "output_size", "must be positive, got " + json_text(j["output_size"]));
    }
  }
  c.attention_dropout = read_number(j, source, "attention_dropout", "attention_dropout", 0.0);
  if (j.contains("q_lora_rank") && !j["q_lora_rank"].is_null() && c.q_lora_rank <= 0) {
    fail_field(source, "q_lora_rank",
               "must be null or positive, got " + json_text(j["q_lora_rank"]));
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
  nlohmann::json j;
  j["hidden_size"] = c.hidden_size;
  j["num_attention_heads"] = c.num_heads;
  j["q_lora_rank"] = c.has_q_lora() ? nlohmann::json(c.q_lora_rank) : nlohmann::json(nullptr);
  j["kv_lora_rank"] = c.kv_lora_rank;
  j["qk_nope_head_dim"] = c.qk_nope_head_dim;
  j["qk_rope_head_dim"] = c.qk_rope_head_dim;
  j["v_head_dim"] = c.v_head_dim;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["max_position_embeddings"] = c.max_position_embeddings;
  if (c.rope_scaling.type == RopeScalingType::kYarn) {
    const RopeScaling& r = c.rope_scaling;
    j["rope_scaling"] = {{"type", "yarn"},
                         {"factor", r.factor},
                         {"original_max_position_embeddings", r.original_max_position_embeddings},
                         {"beta_fast", r.beta_fast},
                         {"beta_slow", r.beta_slow},
                         {"mscale", r.mscale},
                         {"mscale_all_dim", r.mscale_all_dim}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  // Written only when they differ from DeepSeek's, so DeepSeek configs keep their fields.
  if (c.latent_norm != LatentNorm::kRmsNorm) j["latent_norm"] = latent_norm_name(c.latent_norm);
  if (c.projection_bias) j["projection_bias"] = true;
  if (c.output_size > 0) j["output_size"] = c.output_size;
  if (c.attention_dropout != 0.0) j["attention_dropout"] = c.attention_dropout;
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
