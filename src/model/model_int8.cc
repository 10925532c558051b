// Weight products from one-byte weights: int8 with per-row scales (--weight-dtype int8) and FP8
// e4m3 with 128x128 block scales (V3/R1 releases, kept in place): a quarter of float32's bytes,
// half of bf16's, for the expert and MLP matrices that dominate a decode step. Both forms take
// one path; they differ only in how a row is widened to float32 (widen_row).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "mla/dtype.h"
#include "model/model_parts.h"
#include "ops/gemm.h"

namespace mla::detail {
namespace {

constexpr int64_t kMaxRows = 8;

// FP8 e4m3 code -> float32, all 256 codes.
struct Fp8Table {
  float value[256];
  Fp8Table() {
    for (int c = 0; c < 256; ++c) value[c] = fp8_e4m3_to_f32(static_cast<uint8_t>(c));
  }
};
const Fp8Table& fp8_table() {
  static const Fp8Table table;
  return table;
}

// Row o widened to float32 into dst; returns the factor its dot products still need. int8's
// scale is one per row, so it multiplies each finished dot instead of every weight; FP8's block
// scales change along the row and are applied here.
float widen_row(const Matrix& w, int64_t o, float* dst) {
  if (w.is_int8()) {
    const int8_t* q = w.q.data() + o * w.in;
#pragma omp simd
    for (int64_t i = 0; i < w.in; ++i) dst[i] = static_cast<float>(q[i]);
    return w.scale[static_cast<size_t>(o)];
  }
  const float* lut = fp8_table().value;
  const uint8_t* codes = w.fp8 + o * w.in;
  const float* scales = w.block_scale.data() + (o / 128) * w.block_cols;
  for (int64_t i = 0; i < w.in; ++i) dst[i] = lut[codes[i]] * scales[i / 128];
  return 1.0f;
}

// rows <= 8: every weight row is read once for all input rows, widened to float32 once into
// `wide` (in floats, L1-resident), then multiplied with each input row. Compiled for AVX-512,
// AVX2 and the baseline, chosen at load time by the CPU (GCC target_clones).
__attribute__((target_clones("avx512f", "avx2", "default"))) void skinny_rows(
    const float* x, int64_t rows, const Matrix& w, int64_t o0, int64_t o1, float* wide, float* y) {
  const int64_t in = w.in;
  for (int64_t o = o0; o < o1; ++o) {
    const float factor = widen_row(w, o, wide);
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < in; ++i) sum += xr[i] * wide[i];
      y[r * w.out + o] = sum * factor;
    }
  }
}

}  // namespace

void one_byte_row(const Matrix& w, int64_t o, float* dst) {
  const float factor = widen_row(w, o, dst);
  if (factor == 1.0f) return;
  for (int64_t i = 0; i < w.in; ++i) dst[i] *= factor;
}

void linear_one_byte(const float* x, int64_t rows, const Matrix& w, float* y) {
  const int64_t in = w.in, out = w.out;
  if (rows <= kMaxRows) {
#pragma omp parallel
    {
      thread_local std::vector<float> wide;
      if (static_cast<int64_t>(wide.size()) < in) wide.resize(static_cast<size_t>(in));
      const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
      const int64_t per = (out + n - 1) / n;
      const int64_t o0 = std::min(out, t * per), o1 = std::min(out, o0 + per);
      skinny_rows(x, rows, w, o0, o1, wide.data(), y);
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
    for (int64_t o = 0; o < nb; ++o) one_byte_row(w, o0 + o, block.data() + o * in);
    ops::gemm(false, true, rows, nb, in, 1.0f, x, in, block.data(), in, 0.0f, y + o0, out);
  }
}

}  // namespace mla::detail
