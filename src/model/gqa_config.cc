// GqaConfig's checks and its MLA-shaped default, apart from the layer so that config readers
// (the training checkpoint reader and its fuzz target) build without the kernels.
#include <algorithm>
#include <string>

#include "mla/gqa_layer.h"

namespace mla {

void GqaConfig::validate() const {
  validate_fields(*this, "gqa config");
  if (num_heads % num_kv_heads != 0) {
    fail("gqa config", "num_kv_heads",
         "must divide num_heads (" + std::to_string(num_heads) + "), got " +
             std::to_string(num_kv_heads));
  }
  if (rope_dim > head_dim) {
    fail("gqa config", "rope_dim",
         "must not exceed head_dim (" + std::to_string(head_dim) + "), got " +
             std::to_string(rope_dim));
  }
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
