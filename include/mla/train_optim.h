// Optimisation pieces of training: AdamW with decoupled weight decay (torch.optim.AdamW's exact
// update), global gradient-norm clipping (torch.nn.utils.clip_grad_norm_) and a linear warm-up
// followed by cosine decay of the learning rate. All of them are flat loops over the model's
// single parameter / gradient buffer. Legend: P = number of parameters.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "mla/model_lm.h"

namespace mla {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // applied to tensors with ParamTensor::decay (matrices)
};

class AdamW {
 public:
  AdamW(int64_t num_params, const AdamWConfig& config);

  // One update with learning rate lr; step() counts updates (bias correction uses it).
  //   p *= 1 - lr wd (decayed tensors only);  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
  //   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  void update(std::span<float> params, std::span<const float> grads,
              const std::vector<ParamTensor>& tensors, double lr);

  const AdamWConfig& config() const { return config_; }
  int64_t step() const { return step_; }
  std::vector<float>& m() { return m_; }  // (P) first moments
  std::vector<float>& v() { return v_; }  // (P) second moments
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  void set_step(int64_t step) { step_ = step; }  // when restoring a checkpoint

 private:
  AdamWConfig config_;
  int64_t step_ = 0;
  std::vector<float> m_, v_;
};

// Scales grads so that their global L2 norm is at most max_norm (no-op when max_norm <= 0);
// returns the norm before clipping. The sum is taken in double in a fixed order.
double clip_grad_norm(std::span<float> grads, double max_norm);

struct LrSchedule {
  double max_lr = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  // Step s (0-based): max_lr (s+1)/warmup during warm-up, then cosine from max_lr to min_lr at
  // the last step.
  double at(int64_t step) const;
};

}  // namespace mla
