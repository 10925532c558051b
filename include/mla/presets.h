// The five MLA systems we reproduce (see docs/presets.md), as configurations of our general MLA
// layer. Each function takes the system's own constructor arguments, validates them with messages
// that name the system and the argument, and returns the MlaConfig of the system's architecture.
// Legend as in config.h: d hidden, H heads, Dn/Dr/Dv head widths, R/Rq latent widths.
#pragma once

#include <cstdint>

#include "mla/config.h"

namespace mla::presets {

// "MHLA" multiheadlatentattention(d_in, d_out, dl, num_head, dropout_rate, contextlenght):
// d = d_in, output_size = d_out, R = Rq = dl, head width Dh = d_out / H; the static (u) branch
// is the Dn = Dh nope part, the rotary (r) branch Dr = Dh / 2 (rounded down to even) shared by all
// heads; Dv = Dh; no latent norm, no biases; attention_dropout = dropout_rate;
// max_position_embeddings = contextlenght.
MlaConfig mhla(int64_t d_in, int64_t d_out, int64_t dl, int64_t num_head, double dropout_rate,
               int64_t context_length);

// The MLA package's MLA(MLAConfig(d_model, num_heads, kv_compressed_dim, q_compressed_dim,
// rope_dim, seq_len)): d = d_model, R = kv_compressed_dim, Rq = q_compressed_dim (0: none), Dr =
// rope_dim, Dn = Dv = d_model / H, RMSNorm latents, projection biases when use_bias.
MlaConfig mla_config(int64_t d_model, int64_t num_heads, int64_t kv_compressed_dim,
                     int64_t q_compressed_dim, int64_t rope_dim, int64_t seq_len,
                     bool use_bias = false);

// DeepSeek-V3's ModelArgs (inference/model.py) restricted to attention; defaults are the
// official code's. YaRN is on when max_seq_len > original_seq_len, as in the official code.
struct ModelArgs {
  int64_t dim = 2048;
  int64_t n_heads = 16;
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 512;
  int64_t qk_nope_head_dim = 128;
  int64_t qk_rope_head_dim = 64;
  int64_t v_head_dim = 128;
  int64_t max_seq_len = 4096 * 4;
  int64_t original_seq_len = 4096;
  double rope_theta = 10000.0;
  double rope_factor = 40.0;
  int64_t beta_fast = 32;
  int64_t beta_slow = 1;
  double mscale = 1.0;

  // The fields once (the Python ModelArgs and its keywords come from this list); the checks with
  // the messages that name ModelArgs stay in deepseek_v3.
  template <class V>
  void visit_fields(V& v) {
    v("dim", dim);
    v("n_heads", n_heads);
    v("q_lora_rank", q_lora_rank);
    v("kv_lora_rank", kv_lora_rank);
    v("qk_nope_head_dim", qk_nope_head_dim);
    v("qk_rope_head_dim", qk_rope_head_dim);
    v("v_head_dim", v_head_dim);
    v("max_seq_len", max_seq_len);
    v("original_seq_len", original_seq_len);
    v("rope_theta", rope_theta);
    v("rope_factor", rope_factor);
    v("beta_fast", beta_fast);
    v("beta_slow", beta_slow);
    v("mscale", mscale);
  }
  bool operator==(const ModelArgs&) const = default;
};
MlaConfig deepseek_v3(const ModelArgs& args);

// "DeepSeek Latent Attention"'s LatentAttention(embed_dim, num_heads, latent_dim_ratio): d =
// embed_dim, R = round(embed_dim * latent_dim_ratio), no query compression, no RoPE (Dr = 0), Dn =
// Dv = embed_dim / H, no latent norm, biases on every projection (nn.Linear's default).
MlaConfig latent_attention(int64_t embed_dim, int64_t num_heads, double latent_dim_ratio);

// RopelessMLA(d_model, n_heads, kv_latent_dim): d = d_model, R = kv_latent_dim, no query
// compression, no RoPE, Dn = Dv = d_model / H, LayerNorm on the latent (eps 1e-5, torch's
// default), no biases.
MlaConfig ropeless_mla(int64_t d_model, int64_t n_heads, int64_t kv_latent_dim);

}  // namespace mla::presets
