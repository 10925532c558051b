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

// Columns k0..k1 of outputs o..o+O-1 for all R rows, each weight vector loaded once and used R
// times. The sums so far come from and go back to partial (O x R vectors) unless first / last:
// the first chunk starts from zero, the last one reduces into y. prefetch > 0 asks for each
// weight row's line that many numbers ahead. Inlined into both callers, so the one-pass caller
// keeps its constant arguments out of the loop.
template <int R, int O>
[[gnu::always_inline]] inline void block(const uint16_t* x, int64_t in, const uint16_t* w,
                                         int64_t o, int64_t k0, int64_t k1, __m512 (*partial)[R],
                                         bool first, bool last, int64_t prefetch, float* y,
                                         int64_t out) {
  __m512 acc[O][R];
  for (int j = 0; j < O; ++j)
    for (int r = 0; r < R; ++r) acc[j][r] = first ? _mm512_setzero_ps() : partial[j][r];
  const uint16_t* wr = w + o * in;
  int64_t k = k0;
  for (; k + 32 <= k1; k += 32) {
    __m512bh wv[O];
    for (int j = 0; j < O; ++j) {
      if (prefetch > 0)
        _mm_prefetch(reinterpret_cast<const char*>(wr + j * in + k + prefetch), _MM_HINT_T0);
      wv[j] = (__m512bh)_mm512_loadu_si512(wr + j * in + k);
    }
    for (int r = 0; r < R; ++r) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + r * in + k);
      for (int j = 0; j < O; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], xv, wv[j]);
    }
  }
  if (k < k1) {
    const __mmask32 m = static_cast<__mmask32>((uint64_t{1} << (k1 - k)) - 1);
    __m512bh wv[O];
    for (int j = 0; j < O; ++j) wv[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, wr + j * in + k);
    for (int r = 0; r < R; ++r) {
      const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x + r * in + k);
      for (int j = 0; j < O; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], xv, wv[j]);
    }
  }
  if (last) {
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) y[r * out + o + j] = _mm512_reduce_add_ps(acc[j][r]);
  } else {
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) partial[j][r] = acc[j][r];
  }
}

// From 5 rows on, one pass along each weight row ran at a quarter to a third of the read
// bandwidth (8 rows, V3's shapes, from memory), whether x's rows fitted in L1 (q_b_proj, 24 KiB)
// or not. So up to kKBlockOutputs outputs are walked together through K in chunks of kKChunk
// (1 KiB of each weight row): the rows' chunk of x stays in L1 for all of them, the block's sums
// wait in an L1 array between chunks, and each weight row's next chunk is prefetched while the
// present one is used, which keeps a prefetch in flight for each of the block's rows.
// Measured 1.6-2.5x from memory at 6-8 rows; x of at most kUnblockedX bytes (weights in L2 in
// the benchmarks) keeps the single pass, which the prefetches would only slow
// (docs/performance.md, "Skinny products at 8 rows").
constexpr int64_t kKChunk = 512;
constexpr int kKBlockOutputs = 48;
constexpr int64_t kUnblockedX = 16 * 1024;

template <int R, int O>
void rows_kblocked(const uint16_t* x, int64_t in, const uint16_t* w, int64_t o0, int64_t o1,
                   float* y, int64_t out) {
  alignas(64) __m512 partial[kKBlockOutputs][R];
  for (int64_t b0 = o0; b0 < o1; b0 += kKBlockOutputs) {
    // No std::min: this file is built for AVX512_BF16 and must not instantiate shared templates
    // (skinny_kernels.h).
    const int64_t b1 = o1 < b0 + kKBlockOutputs ? o1 : b0 + kKBlockOutputs;
    for (int64_t k0 = 0; k0 < in; k0 += kKChunk) {
      const int64_t k1 = in < k0 + kKChunk ? in : k0 + kKChunk;
      const bool first = k0 == 0, last = k1 == in;
      const int64_t prefetch = last ? 0 : kKChunk;
      int64_t o = b0;
      for (; o + O <= b1; o += O)
        block<R, O>(x, in, w, o, k0, k1, partial + (o - b0), first, last, prefetch, y, out);
      for (; o < b1; ++o)
        block<R, 1>(x, in, w, o, k0, k1, partial + (o - b0), first, last, prefetch, y, out);
    }
  }
}

// Up to 16 accumulators: O outputs x R rows.
template <int R>
void rows_fixed(const uint16_t* x, int64_t in, const uint16_t* w, int64_t o0, int64_t o1, float* y,
                int64_t out) {
  constexpr int O = R <= 4 ? 4 : 2;
  if constexpr (R >= 5) {
    if (R * in * static_cast<int64_t>(sizeof(uint16_t)) > kUnblockedX)
      return rows_kblocked<R, O>(x, in, w, o0, o1, y, out);
  }
  int64_t o = o0;
  for (; o + O <= o1; o += O) block<R, O>(x, in, w, o, 0, in, nullptr, true, true, 0, y, out);
  for (; o < o1; ++o) block<R, 1>(x, in, w, o, 0, in, nullptr, true, true, 0, y, out);
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
