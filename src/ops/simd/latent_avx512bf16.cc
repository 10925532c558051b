// Fused latent attention for bf16 caches with AVX512_BF16 (built with -mavx512bf16 on top of
// the AVX-512 flags; see latent_kernels.h). VDPBF16PS multiplies pairs of bf16 and adds both
// products to a float32 lane: twice the work of an FMA per instruction.
//   scores: the query is rounded to bf16 once per item and packed as (pair of w, rows) so that
//           a vector holds 16 rows x 2 consecutive w; the key pair (k[w], k[w+1]) is adjacent in
//           the cache row, so it is one 32-bit broadcast read in place.
//   P V:    pairs run over keys: probabilities are stored as (pair of keys, rows, 2) bf16 and
//           each tile's values are repacked once as (pair of keys, columns, 2).
// Quantized caches (fp8, int8) are decoded tile by tile into bf16 rows in scratch, each number
// code x scale rounded to bf16 once, and then run exactly as a bf16 cache holding those rows.
// Float32 caches take the float32 kernel (latent_avx512.cc).
// GCC 12's AVX-512 intrinsics self-initialise their _mm512_undefined_* operands, which
// -W(maybe-)uninitialized reports at inlined calls (GCC bug 105593).
// Clang has no -Wmaybe-uninitialized (and would warn about the unknown option), so GCC only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

#include "ops/simd/latent_kernels.h"

namespace mla::ops {
namespace {

#include "ops/simd/latent_common.inc"
#include "ops/simd/vec512.inc"

using Bf16Pair = int32_t;  // two bf16 lanes, as VDPBF16PS reads them

inline __m512 bcast_pair(const uint16_t* p) {
  Bf16Pair bits;
  __builtin_memcpy(&bits, p, sizeof(bits));
  return _mm512_castsi512_ps(_mm512_set1_epi32(bits));
}

inline __m512 load_pairs(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_load_si512(p));
}

// Round to nearest even, as VCVTNE2PS2BF16 does for the probabilities (inputs are finite).
inline uint16_t round_bf16(float x) {
  uint32_t bits = __builtin_bit_cast(uint32_t, x);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline __m512 dot2(__m512 acc, __m512 a, __m512 b) {
  return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

// Interleaves two float32 vectors into 16 bf16 pairs (a[i], b[i]), rounding to nearest even.
inline __m512i interleave_bf16(__m512 a, __m512 b) {
  const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(b, a);  // a in the low half
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, both);
}

// bf16 pairs back to two float32 vectors: the values the products will really use.
inline void split_bf16(__m512i pairs, __m512* a, __m512* b) {
  *a = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));
  *b = _mm512_castsi512_ps(
      _mm512_and_si512(pairs, _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u))));
}

// One quantized row (latent_common.inc) as `width` bf16 numbers: code x scale, rounded to
// nearest even, 32 at a time inside each scale group; the rope part is already bf16.
template <bool kFp8>
void dequantize_row_bf16(const unsigned char* row, int64_t rank, int64_t width, uint16_t* dst) {
  constexpr DType kDtype = kFp8 ? DType::kF8E4M3 : DType::kI8;
  const auto widen = [](const unsigned char* p, __m512 scale) {
    return kFp8 ? V512::widen_fp8(p, scale)
                : V512::widen_i8(reinterpret_cast<const int8_t*>(p), scale);
  };
  for (int64_t g = 0; g < rank; g += kQuantRowGroup) {
    const int64_t end = min_i(g + kQuantRowGroup, rank);
    const __m512 scale = _mm512_set1_ps(vector_scale(row, kDtype, rank, g));
    int64_t i = g;
    for (; i + 32 <= end; i += 32) {
      const __m512i pair =
          (__m512i)_mm512_cvtne2ps_pbh(widen(row + i + 16, scale), widen(row + i, scale));
      _mm512_storeu_si512(dst + i, pair);
    }
    if (i + 16 <= end) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                          (__m256i)_mm512_cvtneps_pbh(widen(row + i, scale)));
      i += 16;
    }
    const float s = quant_scale(row, rank, g);
    for (; i < end; ++i) {
      const float code =
          kFp8 ? fp8_code_value(row[i]) : static_cast<float>(static_cast<int8_t>(row[i]));
      dst[i] = round_bf16(code * s);
    }
  }
  const unsigned char* rope = row + rank + 4 * ((rank + kQuantRowGroup - 1) / kQuantRowGroup);
  for (int64_t i = rank; i < width; i += 32) {
    const __mmask32 m = width - i >= 32 ? ~__mmask32{0} : (__mmask32{1} << (width - i)) - 1u;
    _mm512_mask_storeu_epi16(dst + i, m, _mm512_maskz_loadu_epi16(m, rope + 2 * (i - rank)));
  }
}

struct Bf16Layout {
  int64_t pairs;     // floor(width / 2): w pairs read from the cache
  bool odd;          // width is odd: the last element goes through an f32 FMA
  uint16_t* qt;      // panel p: (pairs, pw, 2) bf16
  float* qt_last;    // (rows_pad) f32: scaled q[width - 1] when odd
  uint16_t* probs;   // (tile / 2, rows_pad, 2)
  uint16_t* values;  // (tile / 2, rank_pad, 2)
};

void pack_queries_bf16(const LatentItem& it, const LatentScratch& l, const Bf16Layout& b) {
  constexpr int64_t kPw = V512::kW * V512::kQkRowVecs;
  const int64_t rows = item_rows(it);
  const float s = it.scale * kLog2e;
  for (int64_t p = 0; p * kPw < l.rows_pad; ++p) {
    const int64_t pw = panel_width<V512>(l, p);
    uint16_t* panel = b.qt + p * kPw * 2 * b.pairs;
    for (int64_t i = 0; i < pw; ++i) {
      const int64_t r = p * kPw + i;
      const float* q = r < rows ? query_row(it, r) : nullptr;
      for (int64_t w2 = 0; w2 < b.pairs; ++w2) {
        panel[(w2 * pw + i) * 2] = q ? round_bf16(q[2 * w2] * s) : 0;
        panel[(w2 * pw + i) * 2 + 1] = q ? round_bf16(q[2 * w2 + 1] * s) : 0;
      }
      if (b.odd) b.qt_last[r] = q ? q[it.width - 1] * s : 0.0f;
    }
  }
}

template <int NV, int JB>
void qk_block_bf16(const uint16_t* panel, int64_t pw, const float* last,
                   const uint16_t* const* keys, const Bf16Layout& b, int64_t width, float* s,
                   int64_t rows_pad) {
  __m512 acc[JB][NV];
  for (int j = 0; j < JB; ++j)
    for (int v = 0; v < NV; ++v) acc[j][v] = _mm512_setzero_ps();
  for (int64_t w2 = 0; w2 < b.pairs; ++w2) {
    __m512 q[NV];
    for (int v = 0; v < NV; ++v) q[v] = load_pairs(panel + (w2 * pw + v * 16) * 2);
    for (int j = 0; j < JB; ++j) {
      const __m512 k = bcast_pair(keys[j] + 2 * w2);
      for (int v = 0; v < NV; ++v) acc[j][v] = dot2(acc[j][v], q[v], k);
    }
  }
  if (b.odd) {
    for (int j = 0; j < JB; ++j) {
      const __m512 k = _mm512_set1_ps(
          __builtin_bit_cast(float, static_cast<uint32_t>(keys[j][width - 1]) << 16));
      for (int v = 0; v < NV; ++v)
        acc[j][v] = _mm512_fmadd_ps(_mm512_load_ps(last + v * 16), k, acc[j][v]);
    }
  }
  for (int j = 0; j < JB; ++j)
    for (int v = 0; v < NV; ++v) _mm512_store_ps(s + j * rows_pad + v * 16, acc[j][v]);
}

template <int NV>
void qk_keys_bf16(const uint16_t* panel, int64_t pw, const float* last, const uint16_t* const* keys,
                  int64_t n, const Bf16Layout& b, int64_t width, float* s, int64_t rows_pad) {
  constexpr int kJb = V512::kQkKeys;
  int64_t j = 0;
  for (; j + kJb <= n; j += kJb)
    qk_block_bf16<NV, kJb>(panel, pw, last, keys + j, b, width, s + j * rows_pad, rows_pad);
  for (; j + 2 <= n; j += 2)
    qk_block_bf16<NV, 2>(panel, pw, last, keys + j, b, width, s + j * rows_pad, rows_pad);
  for (; j < n; ++j)
    qk_block_bf16<NV, 1>(panel, pw, last, keys + j, b, width, s + j * rows_pad, rows_pad);
}

void qk_tile_bf16(const LatentScratch& l, const Bf16Layout& b, int64_t width,
                  const uint16_t* const* keys, int64_t n, float* s) {
  constexpr int64_t kPw = V512::kW * V512::kQkRowVecs;
  for (int64_t p = 0; p * kPw < l.rows_pad; ++p) {
    const int64_t pw = panel_width<V512>(l, p);
    const uint16_t* panel = b.qt + p * kPw * 2 * b.pairs;
    const float* last = b.qt_last + p * kPw;
    float* sp = s + p * kPw;
    switch (pw / 16) {
      case 1:
        qk_keys_bf16<1>(panel, pw, last, keys, n, b, width, sp, l.rows_pad);
        break;
      case 2:
        qk_keys_bf16<2>(panel, pw, last, keys, n, b, width, sp, l.rows_pad);
        break;
      case 3:
        qk_keys_bf16<3>(panel, pw, last, keys, n, b, width, sp, l.rows_pad);
        break;
      default:
        qk_keys_bf16<V512::kQkRowVecs>(panel, pw, last, keys, n, b, width, sp, l.rows_pad);
        break;
    }
  }
}

// As softmax_tile, but the probabilities go out as bf16 pairs of keys and the sums add the
// rounded values, so that the weights P V really applies sum to the normaliser.
void softmax_tile_bf16(float* s, int64_t n, int64_t rows_pad, int64_t first_key, bool causal,
                       const RowStats& st, uint16_t* probs) {
  for (int64_t r = 0; r < rows_pad; r += 16) {
    const __m512i last = V512::load_i(st.last_key + r);
    __m512 tile_max = _mm512_set1_ps(kMinusInf);
    for (int64_t j = 0; j < n; ++j) {
      __m512 x = _mm512_load_ps(s + j * rows_pad + r);
      if (causal) {
        x = V512::mask_after(x, first_key + j, last);
        _mm512_store_ps(s + j * rows_pad + r, x);
      }
      tile_max = _mm512_max_ps(tile_max, x);
    }
    const __m512 old_max = _mm512_load_ps(st.max + r);
    const __m512 new_max = _mm512_max_ps(old_max, tile_max);
    const __m512 base = V512::zero_if_minus_inf(new_max);
    const __m512 corr = V512::exp2(_mm512_sub_ps(old_max, base));
    __m512 sum = _mm512_setzero_ps(), nan = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 2) {
      const __m512 xa = _mm512_load_ps(s + j * rows_pad + r);
      const __m512 xb =
          j + 1 < n ? _mm512_load_ps(s + (j + 1) * rows_pad + r) : _mm512_setzero_ps();
      nan = V512::keep_nan(V512::keep_nan(nan, xa), xb);  // as in softmax_tile
      const __m512 pa = V512::exp2(_mm512_sub_ps(xa, base));
      const __m512 pb = j + 1 < n ? V512::exp2(_mm512_sub_ps(xb, base)) : _mm512_setzero_ps();
      const __m512i pairs = interleave_bf16(pa, pb);
      _mm512_store_si512(probs + (j / 2 * rows_pad + r) * 2, pairs);
      __m512 ra, rb;
      split_bf16(pairs, &ra, &rb);
      sum = _mm512_add_ps(sum, _mm512_add_ps(ra, rb));
    }
    sum = _mm512_add_ps(sum, nan);
    _mm512_store_ps(st.max + r, new_max);
    _mm512_store_ps(st.sum + r, _mm512_fmadd_ps(_mm512_load_ps(st.sum + r), corr, sum));
    _mm512_store_ps(st.corr + r, corr);
  }
}

// Values (the first `rank` entries of each key row) as (pair of keys, rank_pad, 2) bf16, zero
// past the tile's last key and past `rank`.
void pack_values_bf16(const uint16_t* const* keys, int64_t n, int64_t rank, int64_t rank_pad,
                      uint16_t* out) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t j = 0; j < n; j += 2) {
    const uint16_t* a = keys[j];
    const uint16_t* b = j + 1 < n ? keys[j + 1] : nullptr;
    uint16_t* dst = out + j / 2 * rank_pad * 2;
    for (int64_t c = 0; c < rank_pad; c += 16) {
      const __mmask16 m = c + 16 <= rank ? 0xffff
                          : c < rank     ? static_cast<__mmask16>((1u << (rank - c)) - 1u)
                                         : 0;
      const __m256i va = _mm256_maskz_loadu_epi16(m, a + c);
      const __m256i vb = b ? _mm256_maskz_loadu_epi16(m, b + c) : _mm256_setzero_si256();
      const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(va), vb, 1);
      _mm512_store_si512(dst + c * 2, _mm512_permutexvar_epi16(idx, both));
    }
  }
}

template <int M, int NC>
void pv_block_bf16(float* acc, int64_t acc_stride, const float* corr, const uint16_t* probs,
                   int64_t rows_pad, const uint16_t* values, int64_t rank_pad, int64_t pairs) {
  __m512 a[M][NC];
  for (int i = 0; i < M; ++i) {
    const __m512 c = _mm512_set1_ps(corr[i]);
    for (int v = 0; v < NC; ++v)
      a[i][v] = _mm512_mul_ps(_mm512_load_ps(acc + i * acc_stride + v * 16), c);
  }
  for (int64_t j2 = 0; j2 < pairs; ++j2) {
    __m512 x[NC];
    for (int v = 0; v < NC; ++v) x[v] = load_pairs(values + (j2 * rank_pad + v * 16) * 2);
    for (int i = 0; i < M; ++i) {
      const __m512 p = bcast_pair(probs + (j2 * rows_pad + i) * 2);
      for (int v = 0; v < NC; ++v) a[i][v] = dot2(a[i][v], x[v], p);
    }
  }
  for (int i = 0; i < M; ++i)
    for (int v = 0; v < NC; ++v) _mm512_store_ps(acc + i * acc_stride + v * 16, a[i][v]);
}

template <int NC>
void pv_columns_bf16(float* acc, const LatentScratch& l, const float* corr, const uint16_t* probs,
                     const uint16_t* values, int64_t pairs) {
  constexpr int kM = V512::kPvRows;
  for (int64_t r = 0; r < l.rows_pad; r += kM)
    pv_block_bf16<kM, NC>(acc + r * l.rank_pad, l.rank_pad, corr + r, probs + r * 2, l.rows_pad,
                          values, l.rank_pad, pairs);
}

void pv_tile_bf16(float* acc, const LatentScratch& l, const float* corr, const uint16_t* probs,
                  const uint16_t* values, int64_t n) {
  constexpr int64_t kChunk = 16 * V512::kPvVecs;
  const int64_t pairs = (n + 1) / 2;
  int64_t col = 0;
  for (; col + kChunk <= l.rank_pad; col += kChunk)
    pv_columns_bf16<V512::kPvVecs>(acc + col, l, corr, probs, values + col * 2, pairs);
  for (; col < l.rank_pad; col += 16)
    pv_columns_bf16<1>(acc + col, l, corr, probs, values + col * 2, pairs);
}

}  // namespace

namespace simd {

void latent_item_avx512bf16(const LatentItem& it) {
  if (it.kv.dtype == DType::kF32) {
    latent_item_avx512(it);
    return;
  }
  const LatentScratch l = latent_scratch(item_rows(it), it.width, it.rank);
  Bf16Layout b;
  b.pairs = it.width / 2;
  b.odd = it.width % 2 != 0;
  b.qt = reinterpret_cast<uint16_t*>(it.scratch + l.qt);
  // The keys block: bf16 keys of a quantized tile, then qt_last (latent_scratch sizes it).
  uint16_t* decoded = reinterpret_cast<uint16_t*>(it.scratch + l.keys);
  b.qt_last = it.scratch + l.keys + kLatentTile * l.width_pad / 2;
  b.probs = reinterpret_cast<uint16_t*>(it.scratch + l.probs_bf16);
  b.values = reinterpret_cast<uint16_t*>(it.scratch + l.values_bf16);
  float* s = it.scratch + l.scores;
  float* acc = item_acc(it, l);
  const uint16_t** keys = reinterpret_cast<const uint16_t**>(it.scratch + l.pointers);
  pack_queries_bf16(it, l, b);
  const RowStats st = init_stats(it, l, it.scratch);
  for (int64_t i = 0; i < l.rows_pad * l.rank_pad; ++i) acc[i] = 0.0f;
  const int64_t first_limit = it.context_before + it.t0, last_limit = it.context_before + it.t1 - 1;
  for (int64_t j0 = it.k0; j0 < it.k1 && j0 <= last_limit; j0 += kLatentTile) {
    const int64_t n = min_i(kLatentTile, it.k1 - j0);
    for (int64_t j = 0; j < n; ++j) {
      if (it.kv.dtype == DType::kBF16) {
        keys[j] = reinterpret_cast<const uint16_t*>(kv_row(it.kv, j0 + j, 2));
        continue;
      }
      const auto* src = reinterpret_cast<const unsigned char*>(kv_row(it.kv, j0 + j, 1));
      uint16_t* dst = decoded + j * l.width_pad;
      if (it.kv.dtype == DType::kF8E4M3) {
        dequantize_row_bf16<true>(src, it.rank, it.width, dst);
      } else {
        dequantize_row_bf16<false>(src, it.rank, it.width, dst);
      }
      keys[j] = dst;
    }
    qk_tile_bf16(l, b, it.width, keys, n, s);
    softmax_tile_bf16(s, n, l.rows_pad, j0, j0 + n - 1 > first_limit, st, b.probs);
    // As in latent_item_f32: masked keys with a non-finite value must not be multiplied in.
    const int64_t shared = keys_seen_by_all(it, j0, n);
    if (shared < n && values_non_finite_bf16(keys, shared, n, it.rank)) {
      pack_values_bf16(keys, shared, it.rank, l.rank_pad, b.values);
      pv_tile_bf16(acc, l, st.corr, b.probs, b.values, shared);  // also applies corr
      pv_visible_only(
          acc, l, it, st, j0, shared, n,
          [&](int64_t j, int64_t r) {
            const uint16_t bits = b.probs[(j / 2 * l.rows_pad + r) * 2 + j % 2];
            return __builtin_bit_cast(float, static_cast<uint32_t>(bits) << 16);
          },
          [&](int64_t j, int64_t c) {
            return __builtin_bit_cast(float, static_cast<uint32_t>(keys[j][c]) << 16);
          });
    } else {
      pack_values_bf16(keys, n, it.rank, l.rank_pad, b.values);
      pv_tile_bf16(acc, l, st.corr, b.probs, b.values, n);
    }
  }
  finish_item<V512>(it, l, acc, st);
}

}  // namespace simd
}  // namespace mla::ops
