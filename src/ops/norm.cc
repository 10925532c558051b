#include "ops/norm.h"

#include <cmath>

#include "ops/parallel.h"

namespace mla::ops {

void rms_norm_rows(float* x, int64_t rows, int64_t dim, int64_t stride, const float* weight,
                   float eps) {
#pragma omp parallel for schedule(static) if (worth_parallel(4.0 * rows * dim))
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * stride;
    // Sum of squares in double: the mean of many squares loses bits in float32 for wide rows.
    double sum = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) row[i] = row[i] * inv * weight[i];
  }
}

void layer_norm_rows(float* x, int64_t rows, int64_t dim, int64_t stride, const float* weight,
                     const float* bias, float eps) {
#pragma omp parallel for schedule(static) if (worth_parallel(4.0 * rows * dim))
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * stride;
    double sum = 0.0;  // double for the same reason as above
    for (int64_t i = 0; i < dim; ++i) sum += row[i];
    const double mean = sum / static_cast<double>(dim);
    double var = 0.0;
    for (int64_t i = 0; i < dim; ++i) var += (row[i] - mean) * (row[i] - mean);
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) {
      row[i] = static_cast<float>((row[i] - mean) * inv) * weight[i] + bias[i];
    }
  }
}

void add_bias_rows(float* y, int64_t rows, int64_t dim, const float* bias) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * dim;
    for (int64_t i = 0; i < dim; ++i) row[i] += bias[i];
  }
}

}  // namespace mla::ops
