#include "train/linear.h"

#include <cstring>

#include "ops/gemm.h"

namespace mla::train {

template <typename T>
void linear_forward(T* out, const T* inp, const T* w, int64_t n, int64_t c, int64_t oc) {
  ops::gemm(false, true, n, oc, c, T(1), inp, c, w, c, T(0), out, oc);
}

template <typename T>
void linear_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, int64_t n, int64_t c,
                     int64_t oc) {
  if (dinp != nullptr) ops::gemm(false, false, n, c, oc, T(1), dout, oc, w, c, T(1), dinp, c);
  ops::gemm(true, false, oc, c, n, T(1), dout, oc, inp, c, T(1), dw, c);
}

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, int64_t n, int64_t c) {
#pragma omp parallel for schedule(static) if (n * c > 65536)
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * c, wte + static_cast<int64_t>(tokens[i]) * c, sizeof(T) * c);
  }
}

template <typename T>
void embedding_backward(T* dwte, const T* dout, const int32_t* tokens, int64_t n, int64_t c) {
  constexpr int64_t kCols = 16;  // column block per task
#pragma omp parallel for schedule(static) if (n * c > 65536)
  for (int64_t c0 = 0; c0 < c; c0 += kCols) {
    const int64_t c1 = c0 + kCols < c ? c0 + kCols : c;
    for (int64_t i = 0; i < n; ++i) {
      T* dst = dwte + static_cast<int64_t>(tokens[i]) * c;
      const T* src = dout + i * c;
      for (int64_t j = c0; j < c1; ++j) dst[j] += src[j];
    }
  }
}

template <typename T>
void bias_backward(T* db, const T* dout, int64_t n, int64_t oc) {
  if (db == nullptr) return;
  for (int64_t i = 0; i < n; ++i) {  // rows in order: thread-count independent sums
    for (int64_t o = 0; o < oc; ++o) db[o] += dout[i * oc + o];
  }
}

template void bias_backward<float>(float*, const float*, int64_t, int64_t);
template void bias_backward<double>(double*, const double*, int64_t, int64_t);
template void linear_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t);
template void linear_forward<double>(double*, const double*, const double*, int64_t, int64_t,
                                     int64_t);
template void linear_backward<float>(float*, float*, const float*, const float*, const float*,
                                     int64_t, int64_t, int64_t);
template void linear_backward<double>(double*, double*, const double*, const double*, const double*,
                                      int64_t, int64_t, int64_t);
template void embedding_forward<float>(float*, const int32_t*, const float*, int64_t, int64_t);
template void embedding_forward<double>(double*, const int32_t*, const double*, int64_t, int64_t);
template void embedding_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template void embedding_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t);

}  // namespace mla::train
