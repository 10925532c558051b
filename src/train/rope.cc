#include "train/rope.h"

#include "ops/rope.h"

namespace mla::train {
namespace {

// y = R x (sign = +1) or y = R^T x (sign = -1) for every slice, in place.
template <typename T>
void rotate(T* x, const float* cos_sin, const RopeLayout& l, T sign) {
  const int64_t n = l.batch * l.seq;
#pragma omp parallel for schedule(static) if (n * l.vectors * l.dr > 65536)
  for (int64_t row = 0; row < n; ++row) {
    const float* cs = cos_sin + (row % l.seq) * l.dr;
    for (int64_t v = 0; v < l.vectors; ++v) {
      T* p = x + row * l.token_stride + v * l.vector_stride;
      for (int64_t k = 0; k < l.dr; k += 2) {
        const T c = static_cast<T>(cs[k]), s = sign * static_cast<T>(cs[k + 1]);
        const T a = p[k], b = p[k + 1];
        p[k] = a * c - b * s;
        p[k + 1] = a * s + b * c;
      }
    }
  }
}

}  // namespace

std::vector<float> rope_table(const MlaConfig& config, int64_t seq) {
  const int64_t dr = config.qk_rope_head_dim;
  std::vector<float> table(static_cast<size_t>(seq * dr));
  if (dr == 0) return table;
  const std::vector<float> freqs = ops::rope_frequencies(config);
  const float amplitude = ops::rope_amplitude(config);
  for (int64_t t = 0; t < seq; ++t) ops::rope_cos_sin(freqs, amplitude, t, table.data() + t * dr);
  return table;
}

template <typename T>
void rope_forward(T* x, const float* cos_sin, const RopeLayout& layout) {
  rotate(x, cos_sin, layout, T(1));
}

template <typename T>
void rope_backward(T* dx, const float* cos_sin, const RopeLayout& layout) {
  // The rotation is orthogonal up to the amplitude factor, so its transpose is the rotation by
  // -angle with the same amplitude: flip the sign of sin.
  rotate(dx, cos_sin, layout, T(-1));
}

template void rope_forward<float>(float*, const float*, const RopeLayout&);
template void rope_forward<double>(double*, const float*, const RopeLayout&);
template void rope_backward<float>(float*, const float*, const RopeLayout&);
template void rope_backward<double>(double*, const float*, const RopeLayout&);

}  // namespace mla::train
