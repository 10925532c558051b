// RMSNorm in float32 as DeepSeek defines it: y = x / sqrt(mean(x^2) + eps) * w.
#pragma once

#include <cstdint>

namespace mla::ops {

// Normalises `rows` vectors of width `dim` in place; row r starts at x + r * stride.
void rms_norm_rows(float* x, int64_t rows, int64_t dim, int64_t stride, const float* weight,
                   float eps);

}  // namespace mla::ops
