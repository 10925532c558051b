#include "ops/norm.h"

#include <cmath>

#include "ops/parallel.h"

namespace mla::ops {
template <typename T>
void rms_norm_forward(T* out, T* rstd, const T* inp, const T* w, int64_t n, int64_t c, double eps,
                      int64_t inp_stride, int64_t out_stride) {
#pragma omp parallel for schedule(static) if (worth_parallel(4.0 * n * c))
  for (int64_t i = 0; i < n; ++i) {
    const T* x = inp + i * inp_stride;
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += static_cast<double>(x[j]) * static_cast<double>(x[j]);
    const T r = static_cast<T>(1.0 / std::sqrt(sum / static_cast<double>(c) + eps));
    if (rstd != nullptr) rstd[i] = r;
    T* y = out + i * out_stride;
    for (int64_t j = 0; j < c; ++j) y[j] = x[j] * r * w[j];
  }
}

template <typename T>
void rms_norm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd,
                       int64_t n, int64_t c, int64_t inp_stride, int64_t dout_stride) {
  // dx_j = r w_j dy_j - x_j r^3 / C * sum_k x_k w_k dy_k
#pragma omp parallel for schedule(static) if (worth_parallel(4.0 * n * c))
  for (int64_t i = 0; i < n; ++i) {
    const T* x = inp + i * inp_stride;
    const T* dy = dout + i * dout_stride;
    double dot = 0.0;
    for (int64_t j = 0; j < c; ++j) dot += static_cast<double>(x[j] * w[j] * dy[j]);
    const T r = rstd[i];
    const T k = static_cast<T>(dot) * r * r * r / static_cast<T>(c);
    T* dx = dinp + i * inp_stride;
    for (int64_t j = 0; j < c; ++j) dx[j] += r * w[j] * dy[j] - x[j] * k;
  }
#pragma omp parallel for schedule(static) if (worth_parallel(4.0 * n * c))
  for (int64_t j = 0; j < c; ++j) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      sum += static_cast<double>(dout[i * dout_stride + j] * inp[i * inp_stride + j] * rstd[i]);
    }
    dw[j] += static_cast<T>(sum);
  }
}

template <typename T>
void layer_norm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t n,
                        int64_t c, double eps, int64_t inp_stride, int64_t out_stride) {
#pragma omp parallel for schedule(static) if (worth_parallel(4.0 * n * c))
  for (int64_t i = 0; i < n; ++i) {
    const T* x = inp + i * inp_stride;
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += static_cast<double>(x[j]);
    const double m = sum / static_cast<double>(c);
    double var = 0.0;
    for (int64_t j = 0; j < c; ++j)
      var += (static_cast<double>(x[j]) - m) * (static_cast<double>(x[j]) - m);
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(c) + eps);
    if (mean != nullptr) mean[i] = static_cast<T>(m);
    if (rstd != nullptr) rstd[i] = static_cast<T>(inv);
    T* y = out + i * out_stride;
    for (int64_t j = 0; j < c; ++j) {
      y[j] = static_cast<T>((static_cast<double>(x[j]) - m) * inv) * w[j] + b[j];
    }
  }
}

template <typename T>
void layer_norm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w,
                         const T* mean, const T* rstd, int64_t n, int64_t c, int64_t inp_stride,
                         int64_t dout_stride) {
  // With xhat = (x - mean) rstd and g = w dy: dx = rstd (g - mean(g) - xhat mean(g xhat)).
#pragma omp parallel for schedule(static) if (worth_parallel(4.0 * n * c))
  for (int64_t i = 0; i < n; ++i) {
    const T* x = inp + i * inp_stride;
    const T* dy = dout + i * dout_stride;
    const T m = mean[i], r = rstd[i];
    double g_mean = 0.0, gx_mean = 0.0;
    for (int64_t j = 0; j < c; ++j) {
      const T g = w[j] * dy[j];
      g_mean += static_cast<double>(g);
      gx_mean += static_cast<double>(g * (x[j] - m) * r);
    }
    const T gm = static_cast<T>(g_mean / static_cast<double>(c));
    const T gxm = static_cast<T>(gx_mean / static_cast<double>(c));
    T* dx = dinp + i * inp_stride;
    for (int64_t j = 0; j < c; ++j) dx[j] += r * (w[j] * dy[j] - gm - (x[j] - m) * r * gxm);
  }
#pragma omp parallel for schedule(static) if (worth_parallel(4.0 * n * c))
  for (int64_t j = 0; j < c; ++j) {
    double sw = 0.0, sb = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const T dy = dout[i * dout_stride + j];
      sw += static_cast<double>(dy * (inp[i * inp_stride + j] - mean[i]) * rstd[i]);
      sb += static_cast<double>(dy);
    }
    dw[j] += static_cast<T>(sw);
    db[j] += static_cast<T>(sb);
  }
}

template <typename T>
void add_bias_rows(T* y, int64_t n, int64_t c, const T* bias) {
  if (bias == nullptr) return;
  for (int64_t i = 0; i < n; ++i) {  // rows in order, as every other sum here
    T* row = y + i * c;
    for (int64_t j = 0; j < c; ++j) row[j] += bias[j];
  }
}

#define MLA_NORM_INSTANTIATE(T)                                                                    \
  template void rms_norm_forward<T>(T*, T*, const T*, const T*, int64_t, int64_t, double, int64_t, \
                                    int64_t);                                                      \
  template void rms_norm_backward<T>(T*, T*, const T*, const T*, const T*, const T*, int64_t,      \
                                     int64_t, int64_t, int64_t);                                   \
  template void layer_norm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t,  \
                                      double, int64_t, int64_t);                                   \
  template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,         \
                                       const T*, int64_t, int64_t, int64_t, int64_t);              \
  template void add_bias_rows<T>(T*, int64_t, int64_t, const T*);
MLA_NORM_INSTANTIATE(float)
MLA_NORM_INSTANTIATE(double)
#undef MLA_NORM_INSTANTIATE

}  // namespace mla::ops
