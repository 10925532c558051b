// The rotary numbers of a model config, for the ops (which know no configs).
#pragma once

#include "mla/config.h"
#include "mla/gqa_layer.h"
#include "ops/rope.h"

namespace mla {

// d_r = qk_rope_head_dim, rope_theta, and YaRN's numbers when config.yarn_active().
ops::RopeParams rope_params(const MlaConfig& config);
// rope_dim and rope_theta; the baseline layer has no YaRN.
ops::RopeParams rope_params(const GqaConfig& config);

}  // namespace mla
