// The skinny paths of linear and linear_bf16 in portable C++ (see skinny_kernels.h): the reference
// the SIMD forms are tested against, and the path of CPUs without AVX2.
#include <cstring>

#include "ops/simd/skinny_kernels.h"

namespace mla::ops::simd {

void skinny_bf16_widen_scalar(const float* x, int64_t rows, int64_t in, const uint16_t* w,
                              int64_t o0, int64_t o1, float* y, int64_t out) {
  for (int64_t o = o0; o < o1; ++o) {
    const uint16_t* wr = w + o * in;
    for (int64_t r = 0; r < rows; ++r) {
      float sum = 0.0f;
      for (int64_t k = 0; k < in; ++k) {
        const uint32_t bits = static_cast<uint32_t>(wr[k]) << 16;
        float wk;
        std::memcpy(&wk, &bits, sizeof(wk));
        sum += x[r * in + k] * wk;
      }
      y[r * out + o] = sum;
    }
  }
}

void skinny_f32_scalar(const float* x, int64_t rows, int64_t in, const float* w, int64_t o0,
                       int64_t o1, float* y, int64_t out) {
  for (int64_t o = o0; o < o1; ++o) {
    for (int64_t r = 0; r < rows; ++r) {
      float sum = 0.0f;
      for (int64_t k = 0; k < in; ++k) sum += x[r * in + k] * w[o * in + k];
      y[r * out + o] = sum;
    }
  }
}

}  // namespace mla::ops::simd
