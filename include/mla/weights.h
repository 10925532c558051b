// One layer's attention weights, float32, each matrix [out_features, in_features] row-major.
// Legend: d = hidden, H = heads, Dn/Dr/Dv = nope/rope/value head widths, R = kv_lora_rank,
// Rq = q_lora_rank.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/dtype.h"

namespace mla {

class CheckpointDir;

struct MlaWeights {
  std::vector<float> wq;       // (H*(Dn+Dr), d)  only without query compression
  std::vector<float> wq_a;     // (Rq, d)
  std::vector<float> q_norm;   // (Rq)
  std::vector<float> wq_b;     // (H*(Dn+Dr), Rq)
  std::vector<float> wkv_a;    // (R+Dr, d)
  std::vector<float> kv_norm;  // (R)
  std::vector<float> wkv_b;    // (H*(Dn+Dv), R): per head Dn rows of W_UK then Dv rows of W_UV
  std::vector<float> wo;       // (d_out, H*Dv), d_out = config.out_size()
  // Only under config.latent_norm == kLayerNorm: the norms' biases (q_norm_bias under query
  // compression). Under kNone there is no q_norm / kv_norm at all.
  std::vector<float> q_norm_bias;   // (Rq)
  std::vector<float> kv_norm_bias;  // (R)
  // Only under config.projection_bias: one bias per projection, the width of its output.
  std::vector<float> bq, bq_a, bq_b, bkv_a, bkv_b, bo;

  // Visits every tensor the config uses, with its Hugging Face name suffix
  // ("q_a_proj.weight", ...) and expected shape. One list drives load, save and checks.
  using Visitor = std::function<void(const std::string& hf_name, const std::vector<int64_t>& shape,
                                     std::vector<float>& data)>;
  void for_each_tensor(const MlaConfig& config, const Visitor& visit);

  // Throws "weights: <name>: expected N values for shape [..], got M", or
  // "weights: <name>: value I is NaN or infinity": a layer never computes with such weights.
  void check_shapes(const MlaConfig& config) const;

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
