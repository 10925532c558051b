// MHA / GQA / MQA attention layer for training, forward and backward, on the weights and math of
// mla::GqaLayer (so a trained model decodes through it): H query heads, G key/value heads
// (G = H: MHA, G = 1: MQA), head width Dh, RoPE (interleaved) on each head's first rope_dim
// entries of q and k, scale 1/sqrt(Dh). Legend: B batch, S tokens, N = B*S, d hidden.
#pragma once

#include <cstdint>
#include <vector>

#include "mla/gqa_layer.h"
#include "train/attention.h"
#include "train/buffers.h"

namespace mla::train {

// Pointers into a parameter (or gradient) buffer, by mla::GqaTensorSet's one list.
template <typename T>
using GqaTensors = GqaTensorSet<T*>;

template <typename T>
class GqaBlock {
 public:
  struct Scratch {
    std::vector<T> d_o, dq, dk, dv;
  };

  explicit GqaBlock(const GqaConfig& config);

  void forward(T* out, const T* x, const GqaTensors<T>& w, int64_t batch, int64_t seq);
  void backward(T* dx, const GqaTensors<T>& g, const T* dout, const T* x, const GqaTensors<T>& w,
                Scratch& scratch);

 private:
  AttentionLayout layout() const;

  GqaConfig c_;
  std::vector<float> rope_;  // (S, rope_dim)
  int64_t batch_ = 0, seq_ = 0;
  std::vector<T> q_, k_, v_;  // (N, H*Dh), (N, G*Dh), (N, G*Dh); q, k after RoPE
  std::vector<T> probs_;      // (B, H, S, S)
  std::vector<T> o_;          // (N, H*Dh)
};

}  // namespace mla::train
