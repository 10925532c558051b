// RMSNorm (DeepSeek: y = x / sqrt(mean(x^2) + eps) * w) and LayerNorm (y = (x - mean) * rstd * w
// + b), forward and backward. Legend: N = rows, C = normalised width. Rows may be strided
// (stride >= C) because MLA normalises the first R entries of each (R + Dr) wide kv_a row.
// Forward saves the per-row statistics backward needs (rstd, and mean for LayerNorm): N numbers
// instead of a second copy of the input. Sums are taken in double, as the inference op does.
// Backward ACCUMULATES into dinp, dw and db.
#pragma once

#include <cstdint>

namespace mla::train {

// out (N, C; row stride out_stride) from inp (N, C; row stride inp_stride); rstd (N).
template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, int64_t n, int64_t c, double eps,
                     int64_t inp_stride, int64_t out_stride);

// dinp (row stride inp_stride) += ..., dw (C) += ...; dout has row stride dout_stride.
template <typename T>
void rmsnorm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd,
                      int64_t n, int64_t c, int64_t inp_stride, int64_t dout_stride);

// out (N,C), mean (N), rstd (N); contiguous rows.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t n,
                       int64_t c, double eps);

template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w,
                        const T* mean, const T* rstd, int64_t n, int64_t c);

}  // namespace mla::train
