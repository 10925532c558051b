// The skinny paths of linear and linear_bf16 (bf16 weights widened in registers), AVX2 + FMA (built
// with -mavx2 -mfma only; see skinny_kernels.h): used where the CPU has no AVX512_BF16.

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
