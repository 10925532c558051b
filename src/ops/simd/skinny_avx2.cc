// The skinny products of linear (f32 weights) and linear_bf16 (bf16 weights widened in
// registers, for CPUs without AVX512_BF16): AVX2 + FMA, built with -mavx2 -mfma only
// (skinny_kernels.h).

#include <immintrin.h>

#include "ops/simd/skinny_kernels.h"

namespace mla::ops::simd {
namespace {

#include "ops/simd/skinny_common.inc"
#include "ops/simd/vec256.inc"

}  // namespace

void skinny_bf16_widen_avx2(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t o0,
                            int64_t o1, float* y, int64_t out) {
  skinny_any<V256>(x, rows, in, w, o0, o1, y, out);
}

void skinny_f32_avx2(const float* x, int64_t rows, int64_t in, const float* w, int64_t o0,
                     int64_t o1, float* y, int64_t out) {
  skinny_any<V256>(x, rows, in, w, o0, o1, y, out);
}

}  // namespace mla::ops::simd
