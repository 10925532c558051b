// int8 weight products with per-row scales (--weight-dtype int8): a quarter of float32's bytes,
// half of bf16's, for the expert, MLP and head matrices that dominate a decode step.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "model/model_parts.h"
#include "ops/gemm.h"

namespace mla::detail {
namespace {

constexpr int64_t kMaxRows = 8;

// rows <= 8: every weight row is read once for all input rows, widened to float32 once into
// `wide` (in floats, L1-resident), then multiplied with each input row. Compiled for AVX-512,
// AVX2 and the baseline, chosen at load time by the CPU (GCC target_clones).
__attribute__((target_clones("avx512f", "avx2", "default"))) void int8_rows(
    const float* x, int64_t rows, int64_t in, const int8_t* q, const float* scale, int64_t o0,
    int64_t o1, int64_t out, float* wide, float* y) {
  for (int64_t o = o0; o < o1; ++o) {
    const int8_t* w = q + o * in;
#pragma omp simd
    for (int64_t i = 0; i < in; ++i) wide[i] = static_cast<float>(w[i]);
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < in; ++i) sum += xr[i] * wide[i];
      y[r * out + o] = sum * scale[o];
    }
  }
}

}  // namespace

void linear_int8(const float* x, int64_t rows, const Matrix& w, float* y) {
  const int64_t in = w.in, out = w.out;
  if (rows <= kMaxRows) {
#pragma omp parallel
    {
      thread_local std::vector<float> wide;
      if (static_cast<int64_t>(wide.size()) < in) wide.resize(static_cast<size_t>(in));
      const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
      const int64_t per = (out + n - 1) / n;
      const int64_t o0 = std::min(out, t * per), o1 = std::min(out, o0 + per);
      int8_rows(x, rows, in, w.q.data(), w.scale.data(), o0, o1, out, wide.data(), y);
    }
    return;
  }
  // More rows: float32 blocks of 256 weight rows, one sgemm each (its threads split the block).
  constexpr int64_t kBlock = 256;
  thread_local std::vector<float> block;
  if (static_cast<int64_t>(block.size()) < kBlock * in)
    block.resize(static_cast<size_t>(kBlock * in));
  for (int64_t o0 = 0; o0 < out; o0 += kBlock) {
    const int64_t nb = std::min(kBlock, out - o0);
    for (int64_t o = 0; o < nb; ++o) {
      const int8_t* src = w.q.data() + (o0 + o) * in;
      const float s = w.scale[o0 + o];
      float* dst = block.data() + o * in;
      for (int64_t i = 0; i < in; ++i) dst[i] = static_cast<float>(src[i]) * s;
    }
    ops::gemm(false, true, rows, nb, in, 1.0f, x, in, block.data(), in, 0.0f, y + o0, out);
  }
}

}  // namespace mla::detail
