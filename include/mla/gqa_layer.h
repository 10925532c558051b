// Baseline attention layers for fair comparisons with MLA: multi-head (MHA, G = H), grouped-query
// (GQA, 1 < G < H) and multi-query (MQA, G = 1) attention, with the same paged pool, the same
// GEMM backend and the same attention kernel as MlaLayer. RoPE (interleaved) covers each head's
// first `rope_dim` entries. Legend: d hidden, H heads, G KV heads, Dh head width.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/paged_cache.h"
#include "mla/tensor_set.h"

namespace mla {

struct GqaConfig {
  int64_t hidden_size = 0;
  int64_t num_heads = 0;     // H
  int64_t num_kv_heads = 0;  // G, divides H
  int64_t head_dim = 0;      // Dh
  int64_t rope_dim = 0;      // rotated entries per head (even, <= Dh)
  double rope_theta = 10000.0;

  template <class V>
  void visit_fields(V& v) {
    v("hidden_size", hidden_size, {.min = 1, .max = 1 << 20});
    v("num_heads", num_heads, {.min = 1, .max = 1 << 16});
    v("num_kv_heads", num_kv_heads, {.min = 1, .max = 1 << 16});  // and divides num_heads
    v("head_dim", head_dim, {.min = 1, .max = 1 << 16});
    v("rope_dim", rope_dim, {.min = 0, .max = 1 << 16, .even = true});  // and <= head_dim
    v("rope_theta", rope_theta, {.min = 1, .min_open = true});
  }
  bool operator==(const GqaConfig&) const = default;

  void validate() const;  // throws "gqa config: <field>: <reason>"
  int64_t cache_numbers_per_token() const { return 2 * num_kv_heads * head_dim; }
  // The MHA/GQA/MQA layer of an MLA config's model: H heads of width d_v (the usual MHA of the
  // same width), RoPE on d_r of each head, `kv_heads` groups.
  static GqaConfig like_mla(const MlaConfig& mla, int64_t kv_heads);
};

// A baseline layer's tensors in Slots (owned vectors, or pointers into a parameter buffer), and
// their one list: for_each_tensor visits (Hugging Face name suffix, shape, slot).
template <typename Slot>
struct GqaTensorSet : TensorList<GqaTensorSet<Slot>> {
  using slot_type = Slot;
  Slot wq{};  // (H*Dh, d)
  Slot wk{};  // (G*Dh, d)
  Slot wv{};  // (G*Dh, d)
  Slot wo{};  // (d, H*Dh)

 private:
  friend struct TensorList<GqaTensorSet>;
  template <typename Self, typename Visit>
  static void visit_all(Self& s, const GqaConfig& c, Visit& visit) {
    const int64_t d = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
    visit(std::string("q_proj.weight"), std::vector<int64_t>{q, d}, s.wq);
    visit(std::string("k_proj.weight"), std::vector<int64_t>{kv, d}, s.wk);
    visit(std::string("v_proj.weight"), std::vector<int64_t>{kv, d}, s.wv);
    visit(std::string("o_proj.weight"), std::vector<int64_t>{d, q}, s.wo);
  }
};

using GqaWeightView = GqaTensorSet<const float*>;

struct GqaWeights : GqaTensorSet<std::vector<float>> {
  static GqaWeights random(const GqaConfig& config, uint64_t seed);
};

class GqaLayer {
 public:
  GqaLayer(const GqaConfig& config, GqaWeights weights);
  // Computes with weights it does not own (no copy); they must outlive the layer.
  GqaLayer(const GqaConfig& config, const GqaWeightView& borrowed);
  ~GqaLayer();
  GqaLayer(GqaLayer&&) noexcept;
  GqaLayer& operator=(GqaLayer&&) noexcept;

  const GqaConfig& config() const { return config_; }
  int64_t paged_token_width() const { return config_.cache_numbers_per_token(); }

  // Same contract as MlaLayer's paged forward: packed (sum new_tokens, hidden) in and out.
  void forward(std::span<const float> x, std::span<const PagedKvPool::SeqId> seqs,
               std::span<const int64_t> new_tokens, PagedKvPool& pool, std::span<float> y);

 private:
  struct Workspace;
  GqaConfig config_;
  void init();
  GqaWeights weights_;
  GqaWeightView view_;  // into weights_, or borrowed
  std::unique_ptr<Workspace> ws_;
};

}  // namespace mla
