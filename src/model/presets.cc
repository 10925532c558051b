// The systems we reproduce as MlaConfigs; docs/presets.md explains each mapping.
#include "mla/presets.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "mla/error.h"

namespace mla::presets {
namespace {

[[noreturn]] void fail(const char* system, const std::string& message) {
  throw Error(std::string(system) + ": " + message);
}

void require_positive(const char* system, const char* name, int64_t value) {
  if (value <= 0)
    fail(system, std::string(name) + " must be positive, got " + std::to_string(value));
}

// Head width of `width` split over `heads`, which must divide it.
int64_t head_width(const char* system, const char* width_name, int64_t width,
                   const char* heads_name, int64_t heads) {
  require_positive(system, width_name, width);
  require_positive(system, heads_name, heads);
  if (width % heads != 0) {
    fail(system, std::string(width_name) + " (" + std::to_string(width) +
                     ") must be divisible by " + heads_name + " (" + std::to_string(heads) + ")");
  }
  return width / heads;
}

// Validates the result too, so that a system's argument out of our limits names the system.
MlaConfig checked(const char* system, const MlaConfig& c) {
  try {
    c.validate();
  } catch (const Error& e) {
    fail(system, e.what());
  }
  return c;
}

}  // namespace

MlaConfig mhla(int64_t d_in, int64_t d_out, int64_t dl, int64_t num_head, double dropout_rate,
               int64_t context_length) {
  const char* system = "MHLA";
  require_positive(system, "d_in", d_in);
  const int64_t dh = head_width(system, "d_out", d_out, "num_head", num_head);
  require_positive(system, "dl", dl);
  require_positive(system, "contextlenght", context_length);
  if (!(dropout_rate >= 0.0 && dropout_rate < 1.0)) {
    std::ostringstream v;
    v << dropout_rate;
    fail(system, "dropout_rate must be in [0, 1), got " + v.str());
  }
  MlaConfig c;
  c.hidden_size = d_in;
  c.output_size = d_out;
  c.num_heads = num_head;
  c.q_lora_rank = dl;
  c.kv_lora_rank = dl;
  c.qk_nope_head_dim = dh;
  c.qk_rope_head_dim = (dh / 2) / 2 * 2;  // RoPE rotates pairs
  c.v_head_dim = dh;
  c.latent_norm = LatentNorm::kNone;
  c.attention_dropout = dropout_rate;
  c.max_position_embeddings = context_length;
  return checked(system, c);
}

MlaConfig mla_config(int64_t d_model, int64_t num_heads, int64_t kv_compressed_dim,
                     int64_t q_compressed_dim, int64_t rope_dim, int64_t seq_len, bool use_bias) {
  const char* system = "MLAConfig";
  const int64_t dh = head_width(system, "d_model", d_model, "num_heads", num_heads);
  require_positive(system, "kv_compressed_dim", kv_compressed_dim);
  if (q_compressed_dim < 0) {
    fail(system, "q_compressed_dim must be positive (or 0 for no query compression), got " +
                     std::to_string(q_compressed_dim));
  }
  if (rope_dim < 0 || rope_dim % 2 != 0) {
    fail(system, "rope_dim must be even and not negative, got " + std::to_string(rope_dim));
  }
  require_positive(system, "seq_len", seq_len);
  MlaConfig c;
  c.hidden_size = d_model;
  c.num_heads = num_heads;
  c.kv_lora_rank = kv_compressed_dim;
  c.q_lora_rank = q_compressed_dim;
  c.qk_nope_head_dim = dh;
  c.qk_rope_head_dim = rope_dim;
  c.v_head_dim = dh;
  c.projection_bias = use_bias;
  c.max_position_embeddings = seq_len;
  return checked(system, c);
}

MlaConfig deepseek_v3(const ModelArgs& a) {
  const char* system = "ModelArgs";
  require_positive(system, "dim", a.dim);
  require_positive(system, "n_heads", a.n_heads);
  require_positive(system, "max_seq_len", a.max_seq_len);
  require_positive(system, "original_seq_len", a.original_seq_len);
  MlaConfig c;
  c.hidden_size = a.dim;
  c.num_heads = a.n_heads;
  c.q_lora_rank = a.q_lora_rank;
  c.kv_lora_rank = a.kv_lora_rank;
  c.qk_nope_head_dim = a.qk_nope_head_dim;
  c.qk_rope_head_dim = a.qk_rope_head_dim;
  c.v_head_dim = a.v_head_dim;
  c.rope_theta = a.rope_theta;
  c.max_position_embeddings = a.max_seq_len;
  c.rope_scaling.type = RopeScalingType::kYarn;
  // The official code switches YaRN on by max_seq_len > original_seq_len alone; with factor 1 the
  // frequencies and the scale are unchanged, which is what our factor > 1 condition gives too.
  c.rope_scaling.factor = a.rope_factor;
  c.rope_scaling.original_max_position_embeddings = a.original_seq_len;
  c.rope_scaling.beta_fast = static_cast<double>(a.beta_fast);
  c.rope_scaling.beta_slow = static_cast<double>(a.beta_slow);
  // The official softmax scale uses mscale the way Hugging Face uses mscale_all_dim, and its
  // cos/sin are not rescaled (mscale / mscale_all_dim = 1).
  c.rope_scaling.mscale = a.mscale;
  c.rope_scaling.mscale_all_dim = a.mscale;
  return checked(system, c);
}

MlaConfig latent_attention(int64_t embed_dim, int64_t num_heads, double latent_dim_ratio) {
  const char* system = "LatentAttention";
  const int64_t dh = head_width(system, "embed_dim", embed_dim, "num_heads", num_heads);
  if (!(latent_dim_ratio > 0.0 && latent_dim_ratio <= 1.0)) {
    std::ostringstream v;
    v << latent_dim_ratio;
    fail(system, "latent_dim_ratio must be in (0, 1], got " + v.str());
  }
  MlaConfig c;
  c.hidden_size = embed_dim;
  c.num_heads = num_heads;
  c.kv_lora_rank =
      std::max<int64_t>(1, std::llround(static_cast<double>(embed_dim) * latent_dim_ratio));
  c.qk_nope_head_dim = dh;
  c.qk_rope_head_dim = 0;
  c.v_head_dim = dh;
  c.latent_norm = LatentNorm::kNone;
  c.projection_bias = true;
  return checked(system, c);
}

MlaConfig ropeless_mla(int64_t d_model, int64_t n_heads, int64_t kv_latent_dim) {
  const char* system = "RopelessMLA";
  const int64_t dh = head_width(system, "d_model", d_model, "n_heads", n_heads);
  require_positive(system, "kv_latent_dim", kv_latent_dim);
  MlaConfig c;
  c.hidden_size = d_model;
  c.num_heads = n_heads;
  c.kv_lora_rank = kv_latent_dim;
  c.qk_nope_head_dim = dh;
  c.qk_rope_head_dim = 0;
  c.v_head_dim = dh;
  c.latent_norm = LatentNorm::kLayerNorm;
  c.rms_norm_eps = 1e-5;
  return checked(system, c);
}

}  // namespace mla::presets
