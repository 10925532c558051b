#include "train/norm.h"

#include <cmath>

namespace mla::train {
namespace {

// Per-row work is split over rows; per-column sums (dw, db) over columns, so every sum is taken
// in the same order whatever the thread count (resumed runs must match bit for bit).
constexpr int64_t kParallelWork = 16384;

}  // namespace

template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, int64_t n, int64_t c, double eps,
                     int64_t inp_stride, int64_t out_stride) {
#pragma omp parallel for schedule(static) if (n * c > kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T* x = inp + i * inp_stride;
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += static_cast<double>(x[j]) * static_cast<double>(x[j]);
    const T r = static_cast<T>(1.0 / std::sqrt(sum / static_cast<double>(c) + eps));
    rstd[i] = r;
    T* y = out + i * out_stride;
    for (int64_t j = 0; j < c; ++j) y[j] = x[j] * r * w[j];
  }
}

template <typename T>
void rmsnorm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd,
                      int64_t n, int64_t c, int64_t inp_stride, int64_t dout_stride) {
  // dx_j = r w_j dy_j - x_j r^3 / C * sum_k x_k w_k dy_k
#pragma omp parallel for schedule(static) if (n * c > kParallelWork)
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
#pragma omp parallel for schedule(static) if (n * c > kParallelWork)
  for (int64_t j = 0; j < c; ++j) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      sum += static_cast<double>(dout[i * dout_stride + j] * inp[i * inp_stride + j] * rstd[i]);
    }
    dw[j] += static_cast<T>(sum);
  }
}

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t n,
                       int64_t c, double eps) {
#pragma omp parallel for schedule(static) if (n * c > kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T* x = inp + i * c;
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += static_cast<double>(x[j]);
    const double m = sum / static_cast<double>(c);
    double var = 0.0;
    for (int64_t j = 0; j < c; ++j)
      var += (static_cast<double>(x[j]) - m) * (static_cast<double>(x[j]) - m);
    const T r = static_cast<T>(1.0 / std::sqrt(var / static_cast<double>(c) + eps));
    mean[i] = static_cast<T>(m);
    rstd[i] = r;
    T* y = out + i * c;
    for (int64_t j = 0; j < c; ++j) y[j] = (x[j] - mean[i]) * r * w[j] + b[j];
  }
}

template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w,
                        const T* mean, const T* rstd, int64_t n, int64_t c) {
  // With xhat = (x - mean) rstd and g = w dy: dx = rstd (g - mean(g) - xhat mean(g xhat)).
#pragma omp parallel for schedule(static) if (n * c > kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T* x = inp + i * c;
    const T* dy = dout + i * c;
    const T m = mean[i], r = rstd[i];
    double g_mean = 0.0, gx_mean = 0.0;
    for (int64_t j = 0; j < c; ++j) {
      const T g = w[j] * dy[j];
      g_mean += static_cast<double>(g);
      gx_mean += static_cast<double>(g * (x[j] - m) * r);
    }
    const T gm = static_cast<T>(g_mean / static_cast<double>(c));
    const T gxm = static_cast<T>(gx_mean / static_cast<double>(c));
    T* dx = dinp + i * c;
    for (int64_t j = 0; j < c; ++j) dx[j] += r * (w[j] * dy[j] - gm - (x[j] - m) * r * gxm);
  }
#pragma omp parallel for schedule(static) if (n * c > kParallelWork)
  for (int64_t j = 0; j < c; ++j) {
    double sw = 0.0, sb = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const T dy = dout[i * c + j];
      sw += static_cast<double>(dy * (inp[i * c + j] - mean[i]) * rstd[i]);
      sb += static_cast<double>(dy);
    }
    dw[j] += static_cast<T>(sw);
    db[j] += static_cast<T>(sb);
  }
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int64_t, int64_t,
                                     double, int64_t, int64_t);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int64_t,
                                      int64_t, double, int64_t, int64_t);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*,
                                      const float*, int64_t, int64_t, int64_t, int64_t);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*,
                                       const double*, const double*, int64_t, int64_t, int64_t,
                                       int64_t);
template void layernorm_forward<float>(float*, float*, float*, const float*, const float*,
                                       const float*, int64_t, int64_t, double);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, int64_t, int64_t, double);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, int64_t, int64_t);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*, int64_t,
                                         int64_t);

}  // namespace mla::train
