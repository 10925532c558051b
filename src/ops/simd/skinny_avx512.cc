// The skinny products of linear (f32 weights) and linear_bf16 (bf16 weights widened in
// registers, for CPUs without AVX512_BF16): AVX-512, built with the AVX-512 flags only
// (skinny_kernels.h).
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics self-initialise their _mm512_undefined_* operands, which
// -W(maybe-)uninitialized reports at inlined calls (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

#include "ops/simd/skinny_kernels.h"

namespace mla::ops::simd {
namespace {

#include "ops/simd/skinny_common.inc"
#include "ops/simd/vec512.inc"

}  // namespace

void skinny_bf16_widen_avx512(const float* x, int64_t rows, int64_t in, const uint16_t* w,
                              int64_t o0, int64_t o1, float* y, int64_t out) {
  skinny_any<V512>(x, rows, in, w, o0, o1, y, out);
}

void skinny_f32_avx512(const float* x, int64_t rows, int64_t in, const float* w, int64_t o0,
                       int64_t o1, float* y, int64_t out) {
  skinny_any<V512>(x, rows, in, w, o0, o1, y, out);
}

}  // namespace mla::ops::simd
