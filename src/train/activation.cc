#include "train/activation.h"

#include <cmath>

namespace mla::train {
namespace {

constexpr int64_t kParallel = 65536;

// splitmix64 finaliser: a strong 64-bit mix, cheap enough to run per element.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) from the top 53 bits.
double uniform(uint64_t key, int64_t i) {
  return static_cast<double>(mix(key ^ mix(static_cast<uint64_t>(i))) >> 11) * 0x1.0p-53;
}

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

}  // namespace

uint64_t dropout_key(uint64_t seed, int64_t step, int64_t site) {
  return mix(mix(seed) ^ mix(static_cast<uint64_t>(step) * 0x100000001b3ull) ^
             static_cast<uint64_t>(site));
}

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n) {
  const T c = static_cast<T>(std::sqrt(2.0 / 3.14159265358979323846));
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t i = 0; i < n; ++i) {
    const T x = inp[i];
    out[i] = T(0.5) * x * (T(1) + std::tanh(c * (x + T(0.044715) * x * x * x)));
  }
}

template <typename T>
void gelu_backward(T* dinp, const T* dout, const T* inp, int64_t n) {
  const T c = static_cast<T>(std::sqrt(2.0 / 3.14159265358979323846));
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t i = 0; i < n; ++i) {
    const T x = inp[i];
    const T u = c * (x + T(0.044715) * x * x * x);
    const T th = std::tanh(u);
    const T du = c * (T(1) + T(3) * T(0.044715) * x * x);
    const T grad = T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du;
    dinp[i] += grad * dout[i];
  }
}

template <typename T>
void swiglu_forward(T* out, const T* gate, const T* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

template <typename T>
void swiglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  // silu'(g) = s (1 + g (1 - s)), s = sigmoid(g)
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i], s = sigmoid(g);
    dgate[i] += dout[i] * up[i] * s * (T(1) + g * (T(1) - s));
    dup[i] += dout[i] * g * s;
  }
}

template <typename T>
void dropout_forward(T* out, const T* inp, int64_t n, double p, uint64_t key) {
  if (p <= 0.0) {
    for (int64_t i = 0; i < n; ++i) out[i] = inp[i];
    return;
  }
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t i = 0; i < n; ++i) out[i] = uniform(key, i) >= p ? inp[i] * keep_scale : T(0);
}

template <typename T>
void dropout_backward(T* dinp, const T* dout, int64_t n, double p, uint64_t key) {
  if (p <= 0.0) {
    for (int64_t i = 0; i < n; ++i) dinp[i] += dout[i];
    return;
  }
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t i = 0; i < n; ++i) {
    if (uniform(key, i) >= p) dinp[i] += dout[i] * keep_scale;
  }
}

#define MLA_TRAIN_ACTIVATIONS(T)                                                   \
  template void gelu_forward<T>(T*, const T*, int64_t);                            \
  template void gelu_backward<T>(T*, const T*, const T*, int64_t);                 \
  template void swiglu_forward<T>(T*, const T*, const T*, int64_t);                \
  template void swiglu_backward<T>(T*, T*, const T*, const T*, const T*, int64_t); \
  template void dropout_forward<T>(T*, const T*, int64_t, double, uint64_t);       \
  template void dropout_backward<T>(T*, const T*, int64_t, double, uint64_t);
MLA_TRAIN_ACTIVATIONS(float)
MLA_TRAIN_ACTIVATIONS(double)
#undef MLA_TRAIN_ACTIVATIONS

}  // namespace mla::train
