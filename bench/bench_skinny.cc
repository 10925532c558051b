// The few-row products (ops/skinny.h) at the AVX-512 level on one thread, with x on a cache line
// or 16 bytes off it: weights in L2 (1024 x 128) or streamed from memory (7168 x 1536, V3's
// q_a_proj), 1 and 8 rows; and bf16 weights through VDPBF16PS against AMX tiles. Calls the kernel
// directly, so the figure is the kernel's own (the library's skinny_linear aligns a misaligned x
// before calling it).
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics self-initialise their _mm512_undefined_* operands (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ops/cache_line_vector.h"
#include "ops/cpu_features.h"
#include "ops/linear_bf16.h"
#include "ops/simd/skinny_kernels.h"

namespace {

void BM_SkinnyF32(benchmark::State& state) {
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  const int64_t offset = state.range(3);  // floats past a cache line
  if (mla::ops::supported_simd_level() < mla::ops::SimdLevel::kAvx512) {
    state.SkipWithError("no AVX-512 here");
    return;
  }
  mla::ops::CacheLineVector<float> x(static_cast<size_t>(rows * in + offset), 1.0f);
  std::vector<float> w(static_cast<size_t>(in * out), 0.01f), y(static_cast<size_t>(rows * out));
  for (auto _ : state) {
    mla::ops::simd::skinny_f32_avx512(x.data() + offset, rows, in, w.data(), 0, out, y.data(), out);
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// bf16 weights: VDPBF16PS (kernel 0) against AMX-BF16 tiles (kernel 1, only where the OS granted
// them; x packed into the tiles' pair layout once per call, as skinny_linear_bf16 does).
void BM_SkinnyBf16(benchmark::State& state) {
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  const bool amx = state.range(3) == 1;
  if (amx && !mla::ops::cpu_features().amx_usable) {
    state.SkipWithError(("no usable AMX here: " + mla::ops::cpu_features().amx_status).c_str());
    return;
  }
  if (mla::ops::supported_simd_level() < mla::ops::SimdLevel::kAvx512Bf16) {
    state.SkipWithError("no AVX512_BF16 here");
    return;
  }
  mla::ops::CacheLineVector<uint16_t> x(static_cast<size_t>(rows * in), 0x3f80);  // 1.0
  mla::ops::CacheLineVector<uint16_t> pairs(
      static_cast<size_t>(mla::ops::simd::amx_pairs_size(rows, in)));
  std::vector<uint16_t> w(static_cast<size_t>(in * out), 0x3c23);  // ~0.01
  std::vector<float> y(static_cast<size_t>(rows * out));
  for (auto _ : state) {
    if (amx) {
      mla::ops::simd::pack_amx_pairs(x.data(), rows, in, pairs.data());
      mla::ops::simd::skinny_bf16_amx(pairs.data(), rows, in, w.data(), 0, out, y.data(), out);
    } else {
      mla::ops::simd::skinny_bf16_dot_avx512bf16(x.data(), rows, in, w.data(), 0, out, y.data(),
                                                 out);
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// ---- Experimental 8-row forms (issue 18 item 4), measured against the library kernel. ----
// Compiled for AVX-512 (+BF16) here only; the benchmarks skip on CPUs without it.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,fma")

// The library's form (O outputs x 8 rows in registers), with x at row stride xs and an optional
// software prefetch of each weight row pf bytes ahead (0: none; hint 0 = t0, 1 = t1, 2 = nta).
// acc[j][r] += x[r][k0, k1) . w[j][k0, k1) for O weight rows from wr (row length `in`), each
// weight line prefetched pf bytes ahead (0: none).
template <int O, int Hint>
void accumulate_f32(__m512 (&acc)[O][8], const float* x, int64_t xs, int64_t in, const float* wr,
                    int64_t k0, int64_t k1, int64_t pf) {
  for (int64_t k = k0; k + 16 <= k1; k += 16) {
    __m512 wv[O];
    for (int j = 0; j < O; ++j) {
      if (pf) {
        const char* a = reinterpret_cast<const char*>(wr + j * in + k) + pf;
        if constexpr (Hint == 0) _mm_prefetch(a, _MM_HINT_T0);
        if constexpr (Hint == 1) _mm_prefetch(a, _MM_HINT_T1);
        if constexpr (Hint == 2) _mm_prefetch(a, _MM_HINT_NTA);
      }
      wv[j] = _mm512_loadu_ps(wr + j * in + k);
    }
    for (int r = 0; r < 8; ++r) {
      const __m512 xv = _mm512_loadu_ps(x + r * xs + k);
      for (int j = 0; j < O; ++j) acc[j][r] = _mm512_fmadd_ps(xv, wv[j], acc[j][r]);
    }
  }
}

template <int O, int Hint>
void direct_f32(const float* x, int64_t xs, int64_t in, const float* w, int64_t out, float* y,
                int64_t pf) {
  constexpr int R = 8;
  for (int64_t o = 0; o + O <= out; o += O) {
    __m512 acc[O][R];
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) acc[j][r] = _mm512_setzero_ps();
    accumulate_f32<O, Hint>(acc, x, xs, in, w + o * in, 0, in, pf);
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) y[r * out + o + j] = _mm512_reduce_add_ps(acc[j][r]);
  }
}

// K-blocked: for NB outputs at a time, K walked in chunks of KC with the 8 x-row chunks in L1;
// the block's accumulators (NB x 8 rows x 16 lanes) live in an L1 array between chunks.
template <int NB, int KC, int Hint = 0>
void kblock_f32(const float* x, int64_t xs, int64_t in, const float* w, int64_t out, float* y,
                int64_t pf) {
  constexpr int R = 8, O = 3;
  static_assert(NB % O == 0);
  alignas(64) static thread_local float accs[NB][R][16];
  for (int64_t ob = 0; ob + NB <= out; ob += NB) {
    for (int64_t kc = 0; kc < in; kc += KC) {
      const int64_t ke = std::min<int64_t>(in, kc + KC);
      for (int g = 0; g < NB; g += O) {
        __m512 acc[O][R];
        for (int j = 0; j < O; ++j)
          for (int r = 0; r < R; ++r)
            acc[j][r] = kc == 0 ? _mm512_setzero_ps() : _mm512_load_ps(accs[g + j][r]);
        accumulate_f32<O, Hint>(acc, x, xs, in, w + (ob + g) * in, kc, ke, pf);
        for (int j = 0; j < O; ++j)
          for (int r = 0; r < R; ++r) _mm512_store_ps(accs[g + j][r], acc[j][r]);
      }
    }
    for (int j = 0; j < NB; ++j)
      for (int r = 0; r < R; ++r)
        y[r * out + ob + j] = _mm512_reduce_add_ps(_mm512_load_ps(accs[j][r]));
  }
}

// Broadcast form on panel-packed weights: wp[(o / (16 P)) * in * 16 P + k * 16 P + o % (16 P)],
// one weight vector = 16 outputs at one k; x[r][k] broadcast; P x 8 accumulators of 16 outputs.
template <int P>
void panel_f32(const float* x, int64_t in, const float* wp, int64_t out, float* y, int64_t pf) {
  constexpr int R = 8, N = 16 * P;
  for (int64_t ob = 0; ob + N <= out; ob += N) {
    __m512 acc[P][R];
    for (int p = 0; p < P; ++p)
      for (int r = 0; r < R; ++r) acc[p][r] = _mm512_setzero_ps();
    const float* wb = wp + ob * in;
    for (int64_t k = 0; k < in; ++k) {
      if (pf) _mm_prefetch(reinterpret_cast<const char*>(wb + k * N) + pf, _MM_HINT_T0);
      __m512 wv[P];
      for (int p = 0; p < P; ++p) wv[p] = _mm512_load_ps(wb + k * N + 16 * p);
      for (int r = 0; r < R; ++r) {
        const __m512 xb = _mm512_set1_ps(x[r * in + k]);
        for (int p = 0; p < P; ++p) acc[p][r] = _mm512_fmadd_ps(xb, wv[p], acc[p][r]);
      }
    }
    for (int p = 0; p < P; ++p)
      for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + r * out + ob + 16 * p, acc[p][r]);
  }
}

// bf16 broadcast form: wp packs 16 P outputs x 2 k per vector ([panel][k / 2][o][2]); the
// pair x[r][k], x[r][k + 1] is broadcast as one 32-bit lane.
template <int P>
void panel_bf16(const uint16_t* x, int64_t in, const uint16_t* wp, int64_t out, float* y,
                int64_t pf) {
  constexpr int R = 8, N = 16 * P;
  for (int64_t ob = 0; ob + N <= out; ob += N) {
    __m512 acc[P][R];
    for (int p = 0; p < P; ++p)
      for (int r = 0; r < R; ++r) acc[p][r] = _mm512_setzero_ps();
    const uint16_t* wb = wp + ob * in;
    for (int64_t k = 0; k < in; k += 2) {
      if (pf) _mm_prefetch(reinterpret_cast<const char*>(wb + k * N) + pf, _MM_HINT_T0);
      __m512bh wv[P];
      for (int p = 0; p < P; ++p) wv[p] = (__m512bh)_mm512_load_si512(wb + k * N + 32 * p);
      for (int r = 0; r < R; ++r) {
        int32_t pair;
        std::memcpy(&pair, x + r * in + k, 4);
        const __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
        for (int p = 0; p < P; ++p) acc[p][r] = _mm512_dpbf16_ps(acc[p][r], xb, wv[p]);
      }
    }
    for (int p = 0; p < P; ++p)
      for (int r = 0; r < R; ++r) _mm512_storeu_ps(y + r * out + ob + 16 * p, acc[p][r]);
  }
}

// The library's bf16 form with x at row stride xs and a weight prefetch pf bytes ahead.
template <int O>
void direct_bf16(const uint16_t* x, int64_t xs, int64_t in, const uint16_t* w, int64_t out,
                 float* y, int64_t pf) {
  constexpr int R = 8;
  for (int64_t o = 0; o + O <= out; o += O) {
    __m512 acc[O][R];
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) acc[j][r] = _mm512_setzero_ps();
    const uint16_t* wr = w + o * in;
    for (int64_t k = 0; k + 32 <= in; k += 32) {
      __m512bh wv[O];
      for (int j = 0; j < O; ++j) {
        if (pf) _mm_prefetch(reinterpret_cast<const char*>(wr + j * in + k) + pf, _MM_HINT_T0);
        wv[j] = (__m512bh)_mm512_loadu_si512(wr + j * in + k);
      }
      for (int r = 0; r < R; ++r) {
        const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + r * xs + k);
        for (int j = 0; j < O; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], xv, wv[j]);
      }
    }
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) y[r * out + o + j] = _mm512_reduce_add_ps(acc[j][r]);
  }
}

// The library's form on x interleaved by vector: xi[(k / 16) * 8 * 16 + r * 16 + k % 16], so the
// 8 x vectors of one k step are one contiguous 512-byte run (one stream instead of 8 rows whose
// stride, a multiple of 4 KiB, puts them all in the same L1 sets).
template <int O>
void xinter_f32(const float* xi, int64_t in, const float* w, int64_t out, float* y, int64_t pf) {
  constexpr int R = 8;
  for (int64_t o = 0; o + O <= out; o += O) {
    __m512 acc[O][R];
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) acc[j][r] = _mm512_setzero_ps();
    const float* wr = w + o * in;
    for (int64_t k = 0; k + 16 <= in; k += 16) {
      __m512 wv[O];
      for (int j = 0; j < O; ++j) {
        if (pf) _mm_prefetch(reinterpret_cast<const char*>(wr + j * in + k) + pf, _MM_HINT_T0);
        wv[j] = _mm512_loadu_ps(wr + j * in + k);
      }
      for (int r = 0; r < R; ++r) {
        const __m512 xv = _mm512_load_ps(xi + k * R + r * 16);
        for (int j = 0; j < O; ++j) acc[j][r] = _mm512_fmadd_ps(xv, wv[j], acc[j][r]);
      }
    }
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) y[r * out + o + j] = _mm512_reduce_add_ps(acc[j][r]);
  }
}

template <int O>
void xinter_bf16(const uint16_t* xi, int64_t in, const uint16_t* w, int64_t out, float* y,
                 int64_t pf) {
  constexpr int R = 8;
  for (int64_t o = 0; o + O <= out; o += O) {
    __m512 acc[O][R];
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) acc[j][r] = _mm512_setzero_ps();
    const uint16_t* wr = w + o * in;
    for (int64_t k = 0; k + 32 <= in; k += 32) {
      __m512bh wv[O];
      for (int j = 0; j < O; ++j) {
        if (pf) _mm_prefetch(reinterpret_cast<const char*>(wr + j * in + k) + pf, _MM_HINT_T0);
        wv[j] = (__m512bh)_mm512_loadu_si512(wr + j * in + k);
      }
      for (int r = 0; r < R; ++r) {
        const __m512bh xv = (__m512bh)_mm512_load_si512(xi + k * R + r * 32);
        for (int j = 0; j < O; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], xv, wv[j]);
      }
    }
    for (int j = 0; j < O; ++j)
      for (int r = 0; r < R; ++r) y[r * out + o + j] = _mm512_reduce_add_ps(acc[j][r]);
  }
}

#pragma GCC pop_options

// Variants of the 8-row f32 product (range 0): 0 library, 1 library form with x rows padded by one
// line (stride in + 16), 2/3/4 that form with a weight prefetch range(4) bytes ahead (t0/t1/nta),
// 5 K-blocked 24 outputs x 512, 6 K-blocked 48 x 1024, 7/8 broadcast on panels of 32/48 outputs.
void BM_Skinny8F32Variant(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const int64_t rows = 8, in = state.range(1), out = state.range(2), pf = state.range(3);
  if (mla::ops::supported_simd_level() < mla::ops::SimdLevel::kAvx512Bf16) {
    state.SkipWithError("no AVX512_BF16 here");
    return;
  }
  const int64_t xs = variant == 0 || variant >= 13 ? in : in + 16;
  mla::ops::CacheLineVector<float> x(static_cast<size_t>(rows * xs), 1.0f);
  mla::ops::CacheLineVector<float> w_lines(static_cast<size_t>(in * out + 16), 0.01f);
  // 15, 16: the library and its form before K-blocking on weights 16 bytes off a cache line, as
  // a large std::vector from glibc's malloc (mmap) starts.
  const float* w_off = w_lines.data() + 4;
  struct {
    const float* data() const { return p; }
    const float* p;
  } w{variant >= 15 ? w_off : w_lines.data()};
  std::vector<float> y(static_cast<size_t>(rows * out));
  for (auto _ : state) {
    switch (variant) {
      case 0:
      case 15:  // the same kernels on weights 16 bytes past a line
        mla::ops::simd::skinny_f32_avx512(x.data(), rows, in, w.data(), 0, out, y.data(), out);
        break;
      case 1:
      case 13:  // the library's form before K-blocking, x at stride in
      case 16:
        direct_f32<3, 0>(x.data(), xs, in, w.data(), out, y.data(), 0);
        break;
      case 2:
        direct_f32<3, 0>(x.data(), xs, in, w.data(), out, y.data(), pf);
        break;
      case 3:
        direct_f32<3, 1>(x.data(), xs, in, w.data(), out, y.data(), pf);
        break;
      case 4:
        direct_f32<3, 2>(x.data(), xs, in, w.data(), out, y.data(), pf);
        break;
      case 5:
        kblock_f32<24, 512>(x.data(), xs, in, w.data(), out, y.data(), pf);
        break;
      case 6:
        kblock_f32<48, 1024>(x.data(), xs, in, w.data(), out, y.data(), pf);
        break;
      case 11:
        kblock_f32<24, 256>(x.data(), xs, in, w.data(), out, y.data(), pf);
        break;
      case 12:
        kblock_f32<48, 256>(x.data(), xs, in, w.data(), out, y.data(), pf);
        break;
      case 14:  // K-blocked 48 x 256, x at stride in, next chunk prefetched
        kblock_f32<48, 256>(x.data(), xs, in, w.data(), out, y.data(), 1024);
        break;
      case 7:
        panel_f32<2>(x.data(), in, w.data(), out, y.data(), pf);
        break;
      case 8:
        panel_f32<3>(x.data(), in, w.data(), out, y.data(), pf);
        break;
      case 9:
        xinter_f32<3>(x.data(), in, w.data(), out, y.data(), pf);
        break;
      case 10:
        xinter_f32<2>(x.data(), in, w.data(), out, y.data(), pf);
        break;
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// bf16 weights, VDPBF16PS: 0 library, 1 library form with x padded, 2 with prefetch, 3/4
// broadcast on panels of 32/48 outputs.
void BM_Skinny8Bf16Variant(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const int64_t rows = 8, in = state.range(1), out = state.range(2), pf = state.range(3);
  if (mla::ops::supported_simd_level() < mla::ops::SimdLevel::kAvx512Bf16) {
    state.SkipWithError("no AVX512_BF16 here");
    return;
  }
  const int64_t xs = variant == 0 || variant == 7 ? in : in + 32;
  mla::ops::CacheLineVector<uint16_t> x(static_cast<size_t>(rows * xs), 0x3f80);
  mla::ops::CacheLineVector<uint16_t> w(static_cast<size_t>(in * out), 0x3c23);
  std::vector<float> y(static_cast<size_t>(rows * out));
  for (auto _ : state) {
    switch (variant) {
      case 0:
        mla::ops::simd::skinny_bf16_dot_avx512bf16(x.data(), rows, in, w.data(), 0, out, y.data(),
                                                   out);
        break;
      case 1:
        direct_bf16<2>(x.data(), xs, in, w.data(), out, y.data(), 0);
        break;
      case 2:
        direct_bf16<2>(x.data(), xs, in, w.data(), out, y.data(), pf);
        break;
      case 3:
        panel_bf16<2>(x.data(), in, w.data(), out, y.data(), pf);
        break;
      case 4:
        panel_bf16<3>(x.data(), in, w.data(), out, y.data(), pf);
        break;
      case 5:
        xinter_bf16<2>(x.data(), in, w.data(), out, y.data(), pf);
        break;
      case 6:
        xinter_bf16<3>(x.data(), in, w.data(), out, y.data(), pf);
        break;
      case 7:  // the library's form before K-blocking, x at stride in
        direct_bf16<2>(x.data(), xs, in, w.data(), out, y.data(), 0);
        break;
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// The K-blocked form's parameters: range(0) picks (outputs per block, K chunk, hint) from the
// table, range(3) the weight prefetch distance in K chunks (0: none), range(4) whether x's rows
// are padded by one line (1) or at stride in (0).
using KBlockF32 = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t);
struct KBlockForm {
  KBlockF32 f;
  int kc;
};
const KBlockForm kKBlockForms[] = {
    {kblock_f32<24, 256, 0>, 256}, {kblock_f32<48, 256, 0>, 256}, {kblock_f32<96, 256, 0>, 256},
    {kblock_f32<48, 128, 0>, 128}, {kblock_f32<48, 512, 0>, 512}, {kblock_f32<48, 256, 1>, 256},
    {kblock_f32<48, 256, 2>, 256}, {kblock_f32<24, 512, 0>, 512}, {kblock_f32<96, 128, 0>, 128},
};

void BM_Skinny8F32KBlock(benchmark::State& state) {
  const KBlockForm form = kKBlockForms[state.range(0)];
  const int64_t rows = 8, in = state.range(1), out = state.range(2);
  const int64_t pf = state.range(3) * form.kc * 4;
  if (mla::ops::supported_simd_level() < mla::ops::SimdLevel::kAvx512Bf16) {
    state.SkipWithError("no AVX512_BF16 here");
    return;
  }
  const int64_t xs = state.range(4) ? in + 16 : in;
  mla::ops::CacheLineVector<float> x(static_cast<size_t>(rows * xs), 1.0f);
  // range(5): weights that many floats past a cache line (4: as a large malloc'd vector).
  mla::ops::CacheLineVector<float> w_lines(static_cast<size_t>(in * out + 16), 0.01f);
  const float* w = w_lines.data() + state.range(5);
  std::vector<float> y(static_cast<size_t>(rows * out));
  for (auto _ : state) {
    form.f(x.data(), xs, in, w, out, y.data(), pf);
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// The whole library path of a bf16-weight product (ops::linear_bf16: x rounded to bf16, split in
// blocks of outputs, the kernel chosen by calibration), one thread as the caller's OpenMP setting.
void BM_LinearBf16(benchmark::State& state) {
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  std::vector<float> x(static_cast<size_t>(rows * in), 0.5f), y(static_cast<size_t>(rows * out));
  std::vector<uint16_t> w(static_cast<size_t>(in * out), 0x3c23);
  for (auto _ : state) {
    mla::ops::linear_bf16(x.data(), rows, in, w.data(), out, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

}  // namespace

BENCHMARK(BM_LinearBf16)
    ->ArgNames({"rows", "in", "out"})
    ->ArgsProduct({{1, 8}, {7168}, {1536}})
    ->ArgsProduct({{8}, {16384}, {7168}})
    ->ArgsProduct({{8}, {1536}, {24576}})
    ->UseRealTime();

BENCHMARK(BM_Skinny8F32KBlock)
    ->ArgNames({"form", "in", "out", "pf", "pad", "w_off"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7, 8}, {7168}, {1536}, {1}, {1}, {0}})
    ->ArgsProduct({{1}, {7168}, {1536}, {2}, {1}, {0}})
    ->ArgsProduct({{0, 1}, {7168}, {1536}, {1}, {0}, {0}})
    ->ArgsProduct({{0, 1, 3}, {1024}, {96}, {0, 1}, {1}, {0}})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7, 8}, {7168}, {1536}, {1, 2}, {0}, {4}})
    ->UseRealTime();

BENCHMARK(BM_Skinny8F32Variant)
    ->ArgNames({"variant", "in", "out", "pf"})
    ->ArgsProduct({{0, 1, 5, 6, 7, 8, 9, 10, 13, 14}, {1024}, {96}, {0}})
    ->ArgsProduct({{0, 1, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16}, {7168}, {1536}, {0}})
    ->ArgsProduct({{2, 3, 4, 9}, {7168}, {1536}, {512, 2048}})
    ->ArgsProduct({{5, 11, 12}, {7168}, {1536}, {0, 1024, 3 * 7168 * 4}})
    ->UseRealTime();

BENCHMARK(BM_Skinny8Bf16Variant)
    ->ArgNames({"variant", "in", "out", "pf"})
    ->ArgsProduct({{0, 1, 3, 4, 5, 6, 7}, {1024}, {96}, {0}})
    ->ArgsProduct({{0, 1, 3, 4, 5, 6, 7}, {7168}, {1536}, {0}})
    ->ArgsProduct({{2, 5}, {7168}, {1536}, {512, 2048}})
    ->UseRealTime();

BENCHMARK(BM_SkinnyBf16)
    ->ArgNames({"rows", "in", "out", "amx"})
    ->ArgsProduct({{1, 4, 6, 8}, {1024}, {128}, {0, 1}})
    ->ArgsProduct({{1, 4, 6, 8}, {7168}, {1536}, {0, 1}})
    ->UseRealTime();

BENCHMARK(BM_SkinnyF32)
    ->ArgNames({"rows", "in", "out", "x_offset"})
    ->ArgsProduct({{1, 4, 6, 8}, {1024}, {128}, {0, 4}})
    ->ArgsProduct({{1, 4, 6, 8}, {7168}, {1536}, {0, 4}})
    ->UseRealTime();

BENCHMARK_MAIN();
