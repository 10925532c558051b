// One layer's attention weights, float32, each matrix [out_features, in_features] row-major.
// Legend: d = hidden, H = heads, Dn/Dr/Dv = nope/rope/value head widths, R = kv_lora_rank,
// Rq = q_lora_rank.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/dtype.h"
#include "mla/tensor_set.h"

namespace mla {

class CheckpointDir;

// One layer's MLA tensors, each held in a Slot: std::vector<float> for owned float32 weights
// (MlaWeights), T* for views into a flat parameter or gradient buffer (training), const float*
// for weights an inference layer borrows. for_each_tensor is the one list of MLA tensors: it
// drives loading, saving, shape checks, the training parameter buffer and the Python views.
template <typename Slot>
struct MlaTensorSet : TensorList<MlaTensorSet<Slot>> {
  using slot_type = Slot;
  Slot wq{};       // (H*(Dn+Dr), d)  only without query compression
  Slot wq_a{};     // (Rq, d)
  Slot q_norm{};   // (Rq)
  Slot wq_b{};     // (H*(Dn+Dr), Rq)
  Slot wkv_a{};    // (R+Dr, d)
  Slot kv_norm{};  // (R)
  Slot wkv_b{};    // (H*(Dn+Dv), R): per head Dn rows of W_UK then Dv rows of W_UV
  Slot wo{};       // (d_out, H*Dv), d_out = config.out_size()
  // Only under config.latent_norm == kLayerNorm: the norms' biases (q_norm_bias under query
  // compression). Under kNone there is no q_norm / kv_norm at all.
  Slot q_norm_bias{};   // (Rq)
  Slot kv_norm_bias{};  // (R)
  // Only under config.projection_bias: one bias per projection, the width of its output.
  Slot bq{}, bq_a{}, bq_b{}, bkv_a{}, bkv_b{}, bo{};

  // for_each_tensor(config, visit) calls visit(hf_name, shape, slot) for every tensor the config
  // uses, with its Hugging Face name suffix ("q_a_proj.weight", ...) and expected shape; slots it
  // does not visit stay unused.
 private:
  friend struct TensorList<MlaTensorSet>;
  template <typename Self, typename Visit>
  static void visit_all(Self& s, const MlaConfig& c, Visit& visit) {
    const int64_t h = c.num_heads, d = c.hidden_size, dqk = c.qk_head_dim();
    // A norm's gain, and its bias under LayerNorm; nothing without a norm.
    auto norm = [&](const char* name, int64_t width, auto& w, auto& b) {
      if (c.latent_norm == LatentNorm::kNone) return;
      visit(std::string(name) + ".weight", std::vector<int64_t>{width}, w);
      if (c.latent_norm == LatentNorm::kLayerNorm) {
        visit(std::string(name) + ".bias", std::vector<int64_t>{width}, b);
      }
    };
    auto proj = [&](const char* name, int64_t out, int64_t in, auto& w, auto& b) {
      visit(std::string(name) + ".weight", std::vector<int64_t>{out, in}, w);
      if (c.projection_bias) visit(std::string(name) + ".bias", std::vector<int64_t>{out}, b);
    };
    if (c.has_q_lora()) {
      proj("q_a_proj", c.q_lora_rank, d, s.wq_a, s.bq_a);
      norm("q_a_layernorm", c.q_lora_rank, s.q_norm, s.q_norm_bias);
      proj("q_b_proj", h * dqk, c.q_lora_rank, s.wq_b, s.bq_b);
    } else {
      proj("q_proj", h * dqk, d, s.wq, s.bq);
    }
    proj("kv_a_proj_with_mqa", c.kv_lora_rank + c.qk_rope_head_dim, d, s.wkv_a, s.bkv_a);
    norm("kv_a_layernorm", c.kv_lora_rank, s.kv_norm, s.kv_norm_bias);
    proj("kv_b_proj", h * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank, s.wkv_b, s.bkv_b);
    proj("o_proj", c.out_size(), h * c.v_head_dim, s.wo, s.bo);
  }
};

// Read-only pointers to a layer's float32 tensors, owned elsewhere (null where unused).
using MlaWeightView = MlaTensorSet<const float*>;

struct MlaWeights : MlaTensorSet<std::vector<float>> {
  // Throws "weights: <name>: expected N values for shape [..], got M", or
  // "weights: <name>: value I is NaN or infinity": a layer never computes with such weights.
  void check_shapes(const MlaConfig& config) const;

  // Pointers into these vectors (null for the unused ones); valid while they are not resized.
  MlaWeightView view(const MlaConfig& config) const;

  // Deterministic random weights (scaled so activations stay O(1)); norms drawn around 1.
  static MlaWeights random(const MlaConfig& config, uint64_t seed);
};

// Index of the first NaN or infinity in data, or -1.
int64_t first_non_finite(const std::vector<float>& data);

// "model.layers.<layer>.self_attn."
std::string layer_prefix(int64_t layer);

// Loads layer `layer` from a checkpoint. Accepts F32, BF16, F16 and FP8 e4m3 with
// `<name>_scale_inv` 128x128 block scales. Errors name the tensor and the file.
MlaWeights load_layer_weights(const CheckpointDir& checkpoint, const MlaConfig& config,
                              int64_t layer);

// Writes the layer in the same layout (one safetensors file, atomically), stored as `dtype`.
void save_layer_weights(const std::string& path, const MlaConfig& config, int64_t layer,
                        const MlaWeights& weights, DType dtype = DType::kF32);

}  // namespace mla
