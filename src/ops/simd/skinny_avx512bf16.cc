// linear_bf16's skinny path with AVX512_BF16 (see skinny_kernels.h): VDPBF16PS multiplies 32
// bf16 pairs and adds them into 16 float32 lanes, so one instruction consumes a 64-byte line
// of weights. Each weight vector is loaded once and used for every row; O outputs at a time
// give O independent weight streams for the prefetchers.
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

template <int R, int O>
void block(const uint16_t* x, int64_t in, const uint16_t* w, int64_t o, float* y, int64_t out) {
  __m512 acc[O][R];
  for (int j = 0; j < O; ++j)
    for (int r = 0; r < R; ++r) acc[j][r] = _mm512_setzero_ps();
  const uint16_t* wr = w + o * in;
  int64_t k = 0;
  for (; k + 32 <= in; k += 32) {
    __m512bh wv[O];
    for (int j = 0; j < O; ++j) wv[j] = (__m512bh)_mm512_loadu_si512(wr + j * in + k);
    for (int r = 0; r < R; ++r) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + r * in + k);
      for (int j = 0; j < O; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], xv, wv[j]);
    }
  }
  if (k < in) {
    const __mmask32 m = static_cast<__mmask32>((uint64_t{1} << (in - k)) - 1);
    __m512bh wv[O];
    for (int j = 0; j < O; ++j) wv[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, wr + j * in + k);
    for (int r = 0; r < R; ++r) {
      const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x + r * in + k);
      for (int j = 0; j < O; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], xv, wv[j]);
    }
  }
  for (int j = 0; j < O; ++j)
    for (int r = 0; r < R; ++r) y[r * out + o + j] = _mm512_reduce_add_ps(acc[j][r]);
}

// Up to 16 accumulators: O outputs x R rows.
template <int R>
void rows_fixed(const uint16_t* x, int64_t in, const uint16_t* w, int64_t o0, int64_t o1, float* y,
                int64_t out) {
  constexpr int O = R <= 4 ? 4 : 2;
  int64_t o = o0;
  for (; o + O <= o1; o += O) block<R, O>(x, in, w, o, y, out);
  for (; o < o1; ++o) block<R, 1>(x, in, w, o, y, out);
}

}  // namespace

void skinny_bf16_dot_avx512bf16(const uint16_t* x, int64_t rows, int64_t in, const uint16_t* w,
                                int64_t o0, int64_t o1, float* y, int64_t out) {
  switch (rows) {
    case 1:
      return rows_fixed<1>(x, in, w, o0, o1, y, out);
    case 2:
      return rows_fixed<2>(x, in, w, o0, o1, y, out);
    case 3:
      return rows_fixed<3>(x, in, w, o0, o1, y, out);
    case 4:
      return rows_fixed<4>(x, in, w, o0, o1, y, out);
    case 5:
      return rows_fixed<5>(x, in, w, o0, o1, y, out);
    case 6:
      return rows_fixed<6>(x, in, w, o0, o1, y, out);
    case 7:
      return rows_fixed<7>(x, in, w, o0, o1, y, out);
    default:
      return rows_fixed<8>(x, in, w, o0, o1, y, out);
  }
}

}  // namespace mla::ops::simd
