// Feed-forward layer for training, forward and backward. Legend: N rows, d width, F hidden.
//   SwiGLU (DeepSeek/LLaMA MLP): out = down( silu(gate x) * (up x) )
//   GELU   (GPT-2 MLP, no bias): out = down( gelu(up x) )
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "mla/model_lm.h"
#include "mla/tensor_set.h"
#include "train/buffers.h"

namespace mla::train {

// The feed-forward tensors and their one list (names after "model.layers.<l>.").
template <typename Slot>
struct FfnTensorSet : TensorList<FfnTensorSet<Slot>> {
  using slot_type = Slot;
  Slot gate{};  // (F, d)  SwiGLU only
  Slot up{};    // (F, d)
  Slot down{};  // (d, F)

  // Pointer slots read as pointers to const: what a forward takes.
  template <typename U = Slot, typename = std::enable_if_t<std::is_pointer_v<U>>>
  operator FfnTensorSet<const std::remove_pointer_t<U>*>() const {
    FfnTensorSet<const std::remove_pointer_t<U>*> view;
    view.gate = gate;
    view.up = up;
    view.down = down;
    return view;
  }

 private:
  friend struct TensorList<FfnTensorSet>;
  template <typename Self, typename Visit>
  static void visit_all(Self& s, const LmConfig& c, Visit& visit) {
    const int64_t d = c.d_model, f = c.ffn_hidden;
    if (c.ffn == FfnKind::kSwiGlu) {
      visit(std::string("mlp.gate_proj.weight"), std::vector<int64_t>{f, d}, s.gate);
    }
    visit(std::string("mlp.up_proj.weight"), std::vector<int64_t>{f, d}, s.up);
    visit(std::string("mlp.down_proj.weight"), std::vector<int64_t>{d, f}, s.down);
  }
};

template <typename T>
using FfnTensors = FfnTensorSet<T*>;

template <typename T>
class FfnBlock {
 public:
  struct Scratch {
    std::vector<T> dh, dgate, dup;
  };

  FfnBlock(FfnKind kind, int64_t d, int64_t f) : kind_(kind), d_(d), f_(f) {}

  void forward(T* out, const T* x, const FfnTensorSet<const T*>& w, int64_t n);
  void backward(T* dx, const FfnTensors<T>& g, const T* dout, const T* x, const FfnTensors<T>& w,
                Scratch& scratch);

 private:
  FfnKind kind_;
  int64_t d_, f_, n_ = 0;
  std::vector<T> gate_, up_, h_;  // (N, F) each; up_ is GELU's pre-activation
};

}  // namespace mla::train
