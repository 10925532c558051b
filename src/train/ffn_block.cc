#include "train/ffn_block.h"

#include "train/activation.h"
#include "train/linear.h"

namespace mla::train {

template <typename T>
void FfnBlock<T>::forward(T* out, const T* x, const FfnTensorSet<const T*>& w, int64_t n) {
  n_ = n;
  grow(up_, n * f_);
  grow(h_, n * f_);
  linear_forward(up_.data(), x, w.up, n, d_, f_);
  if (kind_ == FfnKind::kSwiGlu) {
    grow(gate_, n * f_);
    linear_forward(gate_.data(), x, w.gate, n, d_, f_);
    swiglu_forward(h_.data(), gate_.data(), up_.data(), n * f_);
  } else {
    gelu_forward(h_.data(), up_.data(), n * f_);
  }
  linear_forward(out, h_.data(), w.down, n, f_, d_);
}

template <typename T>
void FfnBlock<T>::backward(T* dx, const FfnTensors<T>& g, const T* dout, const T* x,
                           const FfnTensors<T>& w, Scratch& s) {
  const int64_t n = n_;
  zero_first(s.dh, n * f_);
  linear_backward(s.dh.data(), g.down, dout, h_.data(), w.down, n, f_, d_);
  zero_first(s.dup, n * f_);
  if (kind_ == FfnKind::kSwiGlu) {
    zero_first(s.dgate, n * f_);
    swiglu_backward(s.dgate.data(), s.dup.data(), s.dh.data(), gate_.data(), up_.data(), n * f_);
    linear_backward(dx, g.gate, s.dgate.data(), x, w.gate, n, d_, f_);
  } else {
    gelu_backward(s.dup.data(), s.dh.data(), up_.data(), n * f_);
  }
  linear_backward(dx, g.up, s.dup.data(), x, w.up, n, d_, f_);
}

template class FfnBlock<float>;
template class FfnBlock<double>;

}  // namespace mla::train
