// AdamW, gradient clipping and the learning-rate schedule (include/mla/train_optim.h).
#include <cmath>
#include <numbers>

#include "mla/error.h"
#include "mla/train_optim.h"

namespace mla {

AdamW::AdamW(int64_t num_params, const AdamWConfig& config)
    : config_(config),
      m_(static_cast<size_t>(num_params), 0.0f),
      v_(static_cast<size_t>(num_params), 0.0f) {}

void AdamW::update(std::span<float> params, std::span<const float> grads,
                   const std::vector<ParamTensor>& tensors, double lr) {
  if (params.size() != m_.size() || grads.size() != m_.size()) {
    throw Error("adamw: " + std::to_string(params.size()) + " parameters and " +
                std::to_string(grads.size()) + " gradients for an optimiser of " +
                std::to_string(m_.size()));
  }
  ++step_;
  const auto t = static_cast<double>(step_);
  const float b1 = static_cast<float>(config_.beta1), b2 = static_cast<float>(config_.beta2);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(config_.beta1, t)));
  const float bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(config_.beta2, t)));
  const float eps = static_cast<float>(config_.eps);
  for (const ParamTensor& tensor : tensors) {
    const float decay = tensor.decay ? static_cast<float>(1.0 - lr * config_.weight_decay) : 1.0f;
    float* p = params.data() + tensor.offset;
    const float* g = grads.data() + tensor.offset;
    float* m = m_.data() + tensor.offset;
    float* v = v_.data() + tensor.offset;
#pragma omp parallel for simd schedule(static) if (tensor.numel > 65536)
    for (int64_t i = 0; i < tensor.numel; ++i) {
      p[i] *= decay;
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
    }
  }
}

double clip_grad_norm(std::span<float> grads, double max_norm) {
  double sum = 0.0;
  for (float g : grads) sum += static_cast<double>(g) * static_cast<double>(g);
  const double norm = std::sqrt(sum);
  if (max_norm > 0.0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      const auto c = static_cast<float>(coef);
      for (float& g : grads) g *= c;
    }
  }
  return norm;
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) {
    return max_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  const int64_t decay_steps = total_steps - warmup_steps;
  if (decay_steps <= 1) return max_lr;
  const double progress = std::min(
      1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps - 1));
  return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace mla
