// Feed-forward layer for training, forward and backward. Legend: N rows, d width, F hidden.
//   SwiGLU (DeepSeek/LLaMA MLP): out = down( silu(gate x) * (up x) )
//   GELU   (GPT-2 MLP, no bias): out = down( gelu(up x) )
#pragma once

#include <cstdint>
#include <vector>

#include "mla/model_lm.h"
#include "train/buffers.h"

namespace mla::train {

template <typename T>
struct FfnTensors {
  T* gate = nullptr;  // (F, d)  SwiGLU only
  T* up = nullptr;    // (F, d)
  T* down = nullptr;  // (d, F)
};

template <typename T>
class FfnBlock {
 public:
  struct Scratch {
    std::vector<T> dh, dgate, dup;
  };

  FfnBlock(FfnKind kind, int64_t d, int64_t f) : kind_(kind), d_(d), f_(f) {}

  void forward(T* out, const T* x, const FfnTensors<T>& w, int64_t n);
  void backward(T* dx, const FfnTensors<T>& g, const T* dout, const T* x, const FfnTensors<T>& w,
                Scratch& scratch);

 private:
  FfnKind kind_;
  int64_t d_, f_, n_ = 0;
  std::vector<T> gate_, up_, h_;  // (N, F) each; up_ is GELU's pre-activation
};

}  // namespace mla::train
