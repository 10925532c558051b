// DeepSeek Sparse Attention (DSA, DeepSeek-V3.2): a small "lightning indexer" scores every cached
// token for each new query, and the query then attends, through the absorbed latent cache, only
// to the top_k tokens of highest index score (docs/sparse.md has the math and the sources).
// Legend: d hidden, Rq q_lora_rank (d when the model has no query compression), Hi indexer
// heads, Di indexer head width, Dr = the model's qk_rope_head_dim, n new tokens.
//
//   q_I  (n, Hi, Di) = wq_b c_q               c_q: the query latent after q_a_layernorm
//   k_I  (n, Di)     = LayerNorm(wk x)        one key per token, kept in its own paged cache
//   RoPE on the first Dr entries of every q_I head and of k_I, the NON-interleaved kind:
//        (v[i], v[i + Dr/2]) rotated by pos * f_i (MLA itself rotates (v[2i], v[2i+1]))
//   w    (n, Hi)     = weights_proj x * Hi^-1/2 * Di^-1/2
//   I(t, s)          = sum_h w[t, h] * ReLU(q_I[t, h] . k_I[s])     for s <= t
//   keys of query t  = the top_k s of highest I(t, s) (all of them when t < top_k)
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/paged_cache.h"

namespace mla {

class CheckpointDir;

struct DsaConfig {
  int64_t num_heads = 64;  // Hi (index_n_heads)
  int64_t head_dim = 128;  // Di (index_head_dim)
  int64_t top_k = 2048;    // index_topk
  double layer_norm_eps = 1e-6;

  template <class V>
  void visit_fields(V& v) {
    v("num_heads", num_heads, {.min = 1, .max = 4096, .between = true});
    v("head_dim", head_dim, {.min = 2, .max = 4096, .even = true, .between = true});
    v("top_k", top_k, {.min = 1, .max = (int64_t{1} << 31) - 1, .between = true});
    v("layer_norm_eps", layer_norm_eps, {.min = 0, .min_open = true});
  }
  bool operator==(const DsaConfig&) const = default;
  // Throws "dsa: <field>: <reason>"; Di must be even and hold the model's Dr rotary entries.
  void validate(const MlaConfig& model) const;
};

struct DsaWeights {
  std::vector<float> wq_b;          // (Hi*Di, Rq)  indexer.wq_b.weight
  std::vector<float> wk;            // (Di, d)      indexer.wk.weight
  std::vector<float> k_norm;        // (Di)         indexer.k_norm.weight
  std::vector<float> k_norm_bias;   // (Di)         indexer.k_norm.bias
  std::vector<float> weights_proj;  // (Hi, d)      indexer.weights_proj.weight

  using Visitor = std::function<void(const std::string& hf_name, const std::vector<int64_t>& shape,
                                     std::vector<float>& data)>;
  void for_each_tensor(const MlaConfig& model, const DsaConfig& dsa, const Visitor& visit);
  void check_shapes(const MlaConfig& model, const DsaConfig& dsa) const;
  static DsaWeights random(const MlaConfig& model, const DsaConfig& dsa, uint64_t seed);
};

// "model.layers.L.self_attn.indexer.*" of a DeepSeek-V3.2 checkpoint (F32/BF16/F16/FP8).
DsaWeights load_dsa_weights(const CheckpointDir& checkpoint, const MlaConfig& model,
                            const DsaConfig& dsa, int64_t layer);

class DsaIndexer {
 public:
  DsaIndexer(const MlaConfig& model, const DsaConfig& dsa, DsaWeights weights);

  const DsaConfig& config() const { return dsa_; }
  const MlaConfig& model_config() const { return model_; }
  int64_t key_width() const { return dsa_.head_dim; }  // numbers per token of the index pool

  // k (n, Di) of inputs x (n, d) at rotary positions pos (n).
  void keys(const float* x, int64_t n, const int64_t* pos, float* k) const;
  // q (n, Hi, Di) from the query latent c_q (n, Rq) and head weights w (n, Hi) from x (n, d).
  void queries(const float* x, const float* c_q, int64_t n, const int64_t* pos, float* q,
               float* w) const;

  // One batched step over page pools. New token i of the call (packed in the order of seqs, at
  // position index_pool.length(seq) + t) has x row i and c_q row i. Writes the new keys into
  // index_pool (already reserved; the caller commits), then for every new token the ascending
  // top_k keys of its sequence of highest I(t, s), s <= t, to lists + i * capacity and their
  // number to counts[i]; capacity must be at least min(top_k, longest sequence after the step)
  // (checked, as are the counts, the pool's width and the sequences, before anything is written).
  void select(const float* x, const float* c_q, std::span<const PagedKvPool::SeqId> seqs,
              std::span<const int64_t> new_tokens, PagedKvPool& index_pool, int64_t top_k,
              int64_t capacity, int32_t* lists, int32_t* counts);

 private:
  MlaConfig model_;
  DsaConfig dsa_;
  DsaWeights w_;
  std::vector<float> freqs_;
  float amplitude_ = 1.0f;
  // Scratch of select(), kept between calls.
  std::vector<float> q_, w_heads_, k_;
  std::vector<int64_t> pos_;
};

}  // namespace mla
