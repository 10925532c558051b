#include "model/rope_params.h"

namespace mla {

ops::RopeParams rope_params(const MlaConfig& config) {
  ops::RopeParams p;
  p.dim = config.qk_rope_head_dim;
  p.theta = config.rope_theta;
  p.yarn = config.yarn_active();
  const RopeScaling& s = config.rope_scaling;
  p.factor = s.factor;
  p.original_context = s.original_max_position_embeddings;
  p.beta_fast = s.beta_fast;
  p.beta_slow = s.beta_slow;
  p.mscale = s.mscale;
  p.mscale_all_dim = s.mscale_all_dim;
  return p;
}

ops::RopeParams rope_params(const GqaConfig& config) {
  ops::RopeParams p;
  p.dim = config.rope_dim;
  p.theta = config.rope_theta;
  return p;
}

}  // namespace mla
