// LmConfig: validation, derivation from a few knobs (LmShape), presets and JSON.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/fields_json.h"
#include "mla/error.h"
#include "mla/model_lm.h"

namespace mla {
namespace {

int64_t even_down(int64_t v) {
  return v / 2 * 2;
}

// Reads an enum by name; "unknown kind 'x' (choices: a, b)" otherwise.
template <class E>
E parse_kind(const std::string& s, const std::string& source, const char* field) {
  const std::optional<E> e = enum_from_name<E>(s);
  if (!e) fail(source, field, "unknown kind '" + s + "' (choices: " + enum_choices<E>() + ")");
  return *e;
}

template <typename V>
V get_or(const nlohmann::json& j, const char* key, V fallback, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<V>();
  } catch (const nlohmann::json::exception&) {
    fail(source, key, "has the wrong type: " + it->dump());
  }
}

}  // namespace

const char* attention_kind_name(AttentionKind kind) {
  return enum_name(kind);
}

AttentionKind parse_attention_kind(const std::string& name) {
  const std::optional<AttentionKind> kind = enum_from_name<AttentionKind>(name);
  if (!kind) {
    throw Error("attention: unknown kind '" + name +
                "' (choices: " + enum_choices<AttentionKind>() + ")");
  }
  return *kind;
}

void LmConfig::validate() const {
  const std::string src = "lm config";
  validate_fields(*this, src);
  if (dense_layers < 0 || dense_layers > num_layers) {
    fail(src, "dense_layers",
         "must be in [0, num_layers = " + std::to_string(num_layers) + "], got " +
             std::to_string(dense_layers));
  }
  if (absorbed && attention != AttentionKind::kMla)
    fail(src, "mla_form",
         "absorbed is an MLA form (attention is " + std::string(attention_kind_name(attention)) +
             ")");
  if (sparse.is_sparse()) {
    if (attention != AttentionKind::kMla) fail(src, "sparse", "only the mla attention is sparse");
    if (sparse.kind == SparseKind::kDsa) {
      fail(src, "sparse",
           "dsa is not trainable here (its indexer learns from its own loss); use window, block "
           "or topk");
    }
    try {
      sparse.validate(mla.num_heads);
    } catch (const Error& e) {
      std::string why = e.what();  // "sparse: <field>: <reason>"
      fail(src, "sparse", why.substr(why.find(": ") + 2));
    }
  }
  if (attention == AttentionKind::kMla) {
    mla.validate();
    if (mla.hidden_size != d_model) {
      fail(src, "mla.hidden_size",
           "must equal d_model (" + std::to_string(d_model) + "), got " +
               std::to_string(mla.hidden_size));
    }
    if (mla.out_size() != d_model) {
      fail(src, "mla.output_size",
           "must equal d_model (" + std::to_string(d_model) + ", the residual stream), got " +
               std::to_string(mla.out_size()));
    }
  } else {
    gqa.validate();
    if (gqa.hidden_size != d_model) {
      fail(src, "gqa.hidden_size",
           "must equal d_model (" + std::to_string(d_model) + "), got " +
               std::to_string(gqa.hidden_size));
    }
    if (attention == AttentionKind::kMha && gqa.num_kv_heads != gqa.num_heads) {
      fail(src, "gqa.num_kv_heads", "MHA needs num_kv_heads == num_heads");
    }
    if (attention == AttentionKind::kMqa && gqa.num_kv_heads != 1) {
      fail(src, "gqa.num_kv_heads", "MQA needs num_kv_heads == 1");
    }
  }
}

int64_t LmConfig::cache_numbers_per_token() const {
  return attention == AttentionKind::kMla ? mla.latent_cache_numbers_per_token()
                                          : gqa.cache_numbers_per_token();
}

LmConfig lm_config_from_shape(const LmShape& s) {
  if (s.heads < 1) throw Error("lm shape: heads: must be positive, got " + std::to_string(s.heads));
  if (s.d_model < 1) throw Error("lm shape: d_model: must be positive");
  LmConfig c;
  static_cast<LmChoices&>(c) = s;
  const int64_t dh = s.head_dim > 0 ? s.head_dim : std::max<int64_t>(1, s.d_model / s.heads);
  if (s.attention == AttentionKind::kMla) {
    MlaConfig& m = c.mla;
    m.hidden_size = s.d_model;
    m.num_heads = s.heads;
    m.q_lora_rank = s.q_lora_rank;
    m.kv_lora_rank = s.kv_lora_rank > 0 ? s.kv_lora_rank : std::max<int64_t>(1, s.d_model / 2);
    m.qk_rope_head_dim = s.rope_dim >= 0 ? s.rope_dim : even_down(dh / 2);
    m.qk_nope_head_dim = dh;
    m.v_head_dim = dh;
    m.rope_theta = s.rope_theta;
    m.max_position_embeddings = s.max_seq_len;
  } else {
    GqaConfig& g = c.gqa;
    g.hidden_size = s.d_model;
    g.num_heads = s.heads;
    g.num_kv_heads = s.attention == AttentionKind::kMha   ? s.heads
                     : s.attention == AttentionKind::kMqa ? 1
                     : s.kv_heads > 0                     ? s.kv_heads
                                                          : std::max<int64_t>(1, s.heads / 2);
    g.head_dim = dh;
    g.rope_dim = s.rope_dim >= 0 ? s.rope_dim : even_down(dh);
    g.rope_theta = s.rope_theta;
  }
  c.ffn_hidden = s.ffn_hidden > 0            ? s.ffn_hidden
                 : s.ffn == FfnKind::kSwiGlu ? (8 * s.d_model / 3 + 7) / 8 * 8
                                             : 4 * s.d_model;
  c.validate();
  return c;
}

LmShape lm_preset_shape(const std::string& name) {
  LmShape s;
  if (name == "tiny") {
    s.d_model = 64, s.num_layers = 2, s.heads = 4, s.max_seq_len = 64;
  } else if (name == "small") {
    s.d_model = 128, s.num_layers = 4, s.heads = 4, s.max_seq_len = 128;
  } else if (name == "medium") {
    s.d_model = 256, s.num_layers = 6, s.heads = 8, s.max_seq_len = 256;
  } else {
    std::string known;
    for (const auto& n : lm_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("preset: unknown model preset '" + name + "' (known: " + known + ")");
  }
  return s;
}

std::vector<std::string> lm_preset_names() {
  return {"tiny", "small", "medium"};
}

std::string lm_config_to_json(const LmConfig& c) {
  nlohmann::ordered_json j;
  j["vocab_size"] = c.vocab_size;
  j["max_seq_len"] = c.max_seq_len;
  j["d_model"] = c.d_model;
  j["num_layers"] = c.num_layers;
  j["attention"] = attention_kind_name(c.attention);
  j["ffn"] = enum_name(c.ffn);
  j["ffn_hidden"] = c.ffn_hidden;
  j["norm"] = enum_name(c.norm);
  j["norm_eps"] = c.norm_eps;
  j["tied_embeddings"] = c.tied_embeddings;
  j["dropout"] = c.dropout;
  if (c.sparse.is_sparse()) j["sparse"] = c.sparse.to_string();
  if (c.dense_layers > 0) j["dense_layers"] = c.dense_layers;
  if (c.absorbed) j["mla_form"] = "absorbed";
  if (c.attention == AttentionKind::kMla) {
    j["mla"] = nlohmann::json::parse(config_to_json(c.mla));
  } else {
    j["gqa"] = write_json_fields(c.gqa);
  }
  return j.dump(2);
}

LmConfig parse_lm_config_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(source + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": malformed JSON: the top level must be an object");
  // First the knobs (every field optional), then explicit attention sections override.
  LmShape s;
  s.attention = parse_attention_kind(get_or<std::string>(j, "attention", "mla", source));
  s.d_model = get_or<int64_t>(j, "d_model", s.d_model, source);
  s.num_layers = get_or<int64_t>(j, "num_layers", s.num_layers, source);
  s.heads = get_or<int64_t>(j, "heads", s.heads, source);
  s.kv_heads = get_or<int64_t>(j, "kv_heads", 0, source);
  s.head_dim = get_or<int64_t>(j, "head_dim", 0, source);
  s.kv_lora_rank = get_or<int64_t>(j, "kv_lora_rank", 0, source);
  s.q_lora_rank = get_or<int64_t>(j, "q_lora_rank", 0, source);
  s.rope_dim = get_or<int64_t>(j, "rope_dim", -1, source);
  s.ffn = parse_kind<FfnKind>(get_or<std::string>(j, "ffn", "swiglu", source), source, "ffn");
  s.ffn_hidden = get_or<int64_t>(j, "ffn_hidden", 0, source);
  s.norm = parse_kind<NormKind>(get_or<std::string>(j, "norm", "rmsnorm", source), source, "norm");
  s.tied_embeddings = get_or<bool>(j, "tied_embeddings", true, source);
  s.dropout = get_or<double>(j, "dropout", 0.0, source);
  try {
    s.sparse = parse_sparse_spec(get_or<std::string>(j, "sparse", "dense", source));
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  s.dense_layers = get_or<int64_t>(j, "dense_layers", 0, source);
  const std::string form = get_or<std::string>(j, "mla_form", "naive", source);
  if (form != "naive" && form != "absorbed") fail(source, "mla_form", "use naive or absorbed");
  s.absorbed = form == "absorbed";
  s.vocab_size = get_or<int64_t>(j, "vocab_size", 256, source);
  s.max_seq_len = get_or<int64_t>(j, "max_seq_len", s.max_seq_len, source);
  if (j.contains("gqa") && j["gqa"].is_object())
    s.heads = get_or<int64_t>(j["gqa"], "num_heads", s.heads, source);
  if (j.contains("mla") && j["mla"].is_object()) {
    s.heads = get_or<int64_t>(j["mla"], "num_attention_heads", s.heads, source);
  }
  LmConfig c;
  try {
    c = lm_config_from_shape(s);
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  c.norm_eps = get_or<double>(j, "norm_eps", c.norm_eps, source);
  if (c.attention == AttentionKind::kMla && j.contains("mla")) {
    nlohmann::json m = j["mla"];
    if (!m.is_object()) fail(source, "mla", "must be an object");
    if (!m.contains("hidden_size")) m["hidden_size"] = c.d_model;
    c.mla = parse_config_json(m.dump(), source + ": mla");
  } else if (c.attention != AttentionKind::kMla && j.contains("gqa")) {
    const nlohmann::json& g = j["gqa"];
    if (!g.is_object()) fail(source, "gqa", "must be an object");
    read_json_fields(c.gqa, g, source + ": gqa");
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return c;
}

LmConfig load_lm_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_lm_config_json(text.str(), path);
}

}  // namespace mla
