// RMSNorm as DeepSeek defines it, y = x / sqrt(mean(x^2) + eps) * w, and LayerNorm,
// y = (x - mean) / sqrt(var + eps) * w + b (biased variance, as torch.nn.LayerNorm), forward and
// backward; and a bias add. The one implementation inference and training share: templates on
// the element type (float; double for the finite-difference gradient checks), explicitly
// instantiated for both. Legend: N rows, C normalised width.
//
// Rows may be strided (stride >= C) because MLA normalises the first R entries of each (R + Dr)
// wide latent row. out may alias inp (in place, same strides). Forward can keep the per-row
// statistics backward needs (rstd, and mean for LayerNorm): N numbers instead of a second copy
// of the input; pass null when nothing will be differentiated. Sums are taken in double: the
// mean of many squares loses bits in float32 for wide rows. Backward ACCUMULATES into dinp, dw
// and db, and splits per-row work over rows, per-column sums (dw, db) over columns, so every sum
// is taken in the same order whatever the thread count (resumed runs must match bit for bit).
#pragma once

#include <cstdint>

namespace mla::ops {

// out (N, C; row stride out_stride) from inp (N, C; row stride inp_stride); rstd (N) or null.
template <typename T>
void rms_norm_forward(T* out, T* rstd, const T* inp, const T* w, int64_t n, int64_t c, double eps,
                      int64_t inp_stride, int64_t out_stride);

// dinp (row stride inp_stride) += ..., dw (C) += ...; dout has row stride dout_stride.
template <typename T>
void rms_norm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd,
                       int64_t n, int64_t c, int64_t inp_stride, int64_t dout_stride);

// out (N, C; stride out_stride) from inp (stride inp_stride); mean (N), rstd (N) or both null.
template <typename T>
void layer_norm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t n,
                        int64_t c, double eps, int64_t inp_stride, int64_t out_stride);

// dinp (stride inp_stride) += ..., dw, db (C) += ...; dout has row stride dout_stride.
template <typename T>
void layer_norm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w,
                         const T* mean, const T* rstd, int64_t n, int64_t c, int64_t inp_stride,
                         int64_t dout_stride);

// y (N, C) += bias (C) on every row; nothing when bias is null (a projection without bias).
template <typename T>
void add_bias_rows(T* y, int64_t n, int64_t c, const T* bias);

}  // namespace mla::ops
