#include "train/cross_entropy.h"

#include <algorithm>
#include <cmath>

namespace mla::train {

template <typename T>
double cross_entropy_forward(T* probs, const T* logits, const int32_t* targets, int64_t n,
                             int64_t v, int64_t* scored) {
#pragma omp parallel for schedule(static) if (n * v > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T* z = logits + i * v;
    T* p = probs + i * v;
    const T mx = *std::max_element(z, z + v);
    T sum = 0;
    for (int64_t j = 0; j < v; ++j) {
      p[j] = std::exp(z[j] - mx);
      sum += p[j];
    }
    const T inv = T(1) / sum;
    for (int64_t j = 0; j < v; ++j) p[j] *= inv;
  }
  // The loss is summed serially in double: a fixed order, and no float32 drift over many rows.
  double loss = 0.0;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] < 0) continue;
    loss -= std::log(std::max(static_cast<double>(probs[i * v + targets[i]]), 1e-300));
    ++count;
  }
  *scored = count;
  return count > 0 ? loss / static_cast<double>(count) : 0.0;
}

template <typename T>
void cross_entropy_backward(T* dlogits, const T* probs, const int32_t* targets, int64_t n,
                            int64_t v, int64_t scored, double dloss) {
  if (scored == 0) return;
  const T k = static_cast<T>(dloss / static_cast<double>(scored));
#pragma omp parallel for schedule(static) if (n * v > 65536)
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] < 0) continue;
    const T* p = probs + i * v;
    T* d = dlogits + i * v;
    for (int64_t j = 0; j < v; ++j) d[j] += k * p[j];
    d[targets[i]] -= k;
  }
}

template double cross_entropy_forward<float>(float*, const float*, const int32_t*, int64_t, int64_t,
                                             int64_t*);
template double cross_entropy_forward<double>(double*, const double*, const int32_t*, int64_t,
                                              int64_t, int64_t*);
template void cross_entropy_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t,
                                            int64_t, double);
template void cross_entropy_backward<double>(double*, const double*, const int32_t*, int64_t,
                                             int64_t, int64_t, double);

}  // namespace mla::train
