#include "ops/norm.h"

#include <cmath>

namespace mla::ops {

void rms_norm_rows(float* x, int64_t rows, int64_t dim, int64_t stride, const float* weight,
                   float eps) {
#pragma omp parallel for schedule(static) if (rows * dim > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * stride;
    // Sum of squares in double: the mean of many squares loses bits in float32 for wide rows.
    double sum = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) row[i] = row[i] * inv * weight[i];
  }
}

}  // namespace mla::ops
