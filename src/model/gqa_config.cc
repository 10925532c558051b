// GqaConfig's checks and its MLA-shaped default, apart from the layer so that config readers
// (the training checkpoint reader and its fuzz target) build without the kernels.
#include <algorithm>
#include <string>

#include "mla/error.h"
#include "mla/gqa_layer.h"

namespace mla {

void GqaConfig::validate() const {
  auto fail = [](const std::string& field, const std::string& reason) {
    throw Error("gqa config: " + field + ": " + reason);
  };
  if (hidden_size < 1 || hidden_size > (1 << 20)) fail("hidden_size", "must be in [1, 2^20]");
  if (num_heads < 1 || num_heads > (1 << 16)) fail("num_heads", "must be in [1, 2^16]");
  if (num_kv_heads < 1 || num_heads % num_kv_heads != 0) {
    fail("num_kv_heads", "must divide num_heads (" + std::to_string(num_heads) + "), got " +
                             std::to_string(num_kv_heads));
  }
  if (head_dim < 1 || head_dim > (1 << 16)) fail("head_dim", "must be in [1, 2^16]");
  if (rope_dim < 0 || rope_dim > head_dim || rope_dim % 2 != 0)
    fail("rope_dim", "must be even and in [0, head_dim]");
  if (!(rope_theta > 1.0)) fail("rope_theta", "must be greater than 1");
}

GqaConfig GqaConfig::like_mla(const MlaConfig& mla, int64_t kv_heads) {
  GqaConfig c;
  c.hidden_size = mla.hidden_size;
  c.num_heads = mla.num_heads;
  c.num_kv_heads = kv_heads;
  // The usual MHA of the same model width: heads of width d_v (2048 / 16 = 128 for V2-Lite).
  c.head_dim = mla.v_head_dim;
  c.rope_dim = std::min(mla.qk_rope_head_dim, mla.v_head_dim) / 2 * 2;
  c.rope_theta = mla.rope_theta;
  return c;
}

}  // namespace mla
