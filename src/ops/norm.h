// RMSNorm in float32 as DeepSeek defines it: y = x / sqrt(mean(x^2) + eps) * w; LayerNorm
// (y = (x - mean) / sqrt(var + eps) * w + b, biased variance as torch.nn.LayerNorm); a bias add.
#pragma once

#include <cstdint>

namespace mla::ops {

// Normalises `rows` vectors of width `dim` in place; row r starts at x + r * stride.
void rms_norm_rows(float* x, int64_t rows, int64_t dim, int64_t stride, const float* weight,
                   float eps);
void layer_norm_rows(float* x, int64_t rows, int64_t dim, int64_t stride, const float* weight,
                     const float* bias, float eps);
// y (rows, dim) += bias (dim) on every row.
void add_bias_rows(float* y, int64_t rows, int64_t dim, const float* bias);

}  // namespace mla::ops
