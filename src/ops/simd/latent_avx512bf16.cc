// Fused latent attention for bf16 caches with AVX512_BF16 (built with -mavx512bf16 on top of
// the AVX-512 flags; see latent_kernels.h). VDPBF16PS multiplies pairs of bf16 and adds both
// products to a float32 lane: twice the work of an FMA per instruction.
//   scores: the query is rounded to bf16 once per item and packed as (pair of w, rows) so that
//           a vector holds 16 rows x 2 consecutive w; the key pair (k[w], k[w+1]) is adjacent in
//           the cache row, so it is one 32-bit broadcast read in place.
//   P V:    pairs run over keys: probabilities are stored as (pair of keys, rows, 2) bf16 and
//           each tile's values are repacked once as (pair of keys, columns, 2).
// Quantized caches (fp8, int8): each tile's codes are decoded exactly to bf16 in scratch and go
// through the same products; the group scales are applied in float32, to each group's partial
// score and to the probabilities P V uses for that group's columns (pv_tile_quant).
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

// Codes [i, i + 32) of a quantized row (latent_common.inc) as 32 bf16 numbers, exactly (e4m3
// and int8 codes both fit bf16's 8 significant bits); lanes past `left` are 0.
//   e4m3 -> bf16 in 16-bit lanes: (b & 0x7f) << 4 puts the code's exponent and mantissa in
//   bf16's fields, + 120 << 7 rebases the exponent from bias 7 to 127; the 7 subnormal codes
//   (exponent 0, m x 2^-9) come from a table; the sign is bit 7 << 8.
template <bool kFp8>
__m512i decode_codes(const unsigned char* p, int64_t left) {
  // Masked loads only for the tail: the hardware prefetcher does not follow them, and a
  // quantized row is read only here.
  const __m256i bytes = left >= 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                   : _mm256_maskz_loadu_epi8((__mmask32{1} << left) - 1u, p);
  if constexpr (kFp8) {
    const __m512i subnormals =
        _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                         0x3c60, 0x3c40, 0x3c20, 0x3c00, 0x3bc0, 0x3b80, 0x3b00, 0);
    const __m512i b = _mm512_cvtepu8_epi16(bytes);
    const __m512i mag = _mm512_and_si512(b, _mm512_set1_epi16(0x7f));
    const __m512i normal = _mm512_add_epi16(_mm512_slli_epi16(mag, 4), _mm512_set1_epi16(120 << 7));
    const __mmask32 tiny = _mm512_cmplt_epu16_mask(mag, _mm512_set1_epi16(8));
    const __m512i v = _mm512_mask_permutexvar_epi16(normal, tiny, mag, subnormals);
    // 0xd8 = c ? b : a per bit: the sign (bit 15) from b << 8, the rest from v.
    return _mm512_ternarylogic_epi32(_mm512_slli_epi16(b, 8), v, _mm512_set1_epi16(0x7fff), 0xd8);
  } else {
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(bytes)));
    const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(bytes, 1)));
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
  }
}

inline __mmask32 first32(int64_t n) {
  return n >= 32 ? ~__mmask32{0} : (__mmask32{1} << n) - 1u;
}

// Keys ka (and kb, or none past the tile's end) of a quantized tile: both rows as bf16 codes
// and rope numbers (for the scores), their values interleaved as pack_values_bf16 lays them
// out (for P V), and their group scales, which the products apply in float32 (qk_block_bf16,
// scale_probs).
template <bool kFp8>
void decode_pair_bf16(const unsigned char* ka, const unsigned char* kb, int64_t rank, int64_t width,
                      int64_t rank_pad, uint16_t* da, uint16_t* db, uint16_t* values,
                      float* scales) {
  const __m512i lo_idx =
      _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                       37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
  const int64_t groups = (rank + kQuantRowGroup - 1) / kQuantRowGroup;
  __builtin_memcpy(scales, ka + rank, static_cast<size_t>(groups) * sizeof(float));
  if (kb != nullptr)
    __builtin_memcpy(scales + groups, kb + rank, static_cast<size_t>(groups) * sizeof(float));
  for (int64_t i = 0; i < rank; i += 32) {
    const __m512i a = decode_codes<kFp8>(ka + i, rank - i);
    const __m512i b = kb != nullptr ? decode_codes<kFp8>(kb + i, rank - i) : _mm512_setzero_si512();
    _mm512_mask_storeu_epi16(da + i, first32(rank - i), a);
    if (kb != nullptr) _mm512_mask_storeu_epi16(db + i, first32(rank - i), b);
    _mm512_store_si512(values + i * 2, _mm512_permutex2var_epi16(a, lo_idx, b));
    if (i + 16 < rank_pad)
      _mm512_store_si512(values + (i + 16) * 2, _mm512_permutex2var_epi16(a, hi_idx, b));
  }
  const int64_t rope_at = rank + 4 * groups;
  for (int64_t i = rank; i < width; i += 32) {
    const __mmask32 m = first32(width - i);
    _mm512_mask_storeu_epi16(da + i, m, _mm512_maskz_loadu_epi16(m, ka + rope_at + 2 * (i - rank)));
    if (kb != nullptr)
      _mm512_mask_storeu_epi16(db + i, m,
                               _mm512_maskz_loadu_epi16(m, kb + rope_at + 2 * (i - rank)));
  }
}

struct Bf16Layout {
  int64_t pairs;     // floor(width / 2): w pairs read from the cache
  bool odd;          // width is odd: the last element goes through an f32 FMA
  uint16_t* qt;      // panel p: (pairs, pw, 2) bf16
  float* qt_last;    // (rows_pad) f32: scaled q[width - 1] when odd
  uint16_t* probs;   // (tile / 2, rows_pad, 2), over the scores for a bf16 cache
  uint16_t* values;  // (tile / 2, rank_pad, 2)
  // Quantized caches (keys hold codes; see decode_row_bf16), else scales == nullptr.
  const float* scales = nullptr;    // (tile, groups): each key's group scales
  int64_t groups = 0;               // scale groups of a row: ceil(rank / 128)
  int64_t rank_pairs = 0;           // rank / 2 (the rank is even)
  uint16_t* group_probs = nullptr;  // (groups, tile / 2, rows_pad, 2): probabilities x scale
};

// Each row's 2 * pairs numbers scaled and rounded 32 at a time (VCVTNE2PS2BF16 keeps them in
// order, so the vector holds 16 consecutive pairs), then scattered down the panel's pair rows.
void pack_queries_bf16(const LatentItem& it, const LatentScratch& l, const Bf16Layout& b) {
  constexpr int64_t kPw = V512::kW * V512::kQkRowVecs;
  const int64_t rows = item_rows(it), numbers = 2 * b.pairs;
  const float s = it.scale * kLog2e;
  const __m512 scale = _mm512_set1_ps(s);
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t p = 0; p * kPw < l.rows_pad; ++p) {
    const int64_t pw = panel_width<V512>(l, p);
    uint16_t* panel = b.qt + p * kPw * 2 * b.pairs;
    const __m512i stride = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int32_t>(pw)));
    for (int64_t i = 0; i < pw; ++i) {
      const int64_t r = p * kPw + i;
      const float* q = r < rows ? query_row(it, r) : nullptr;
      for (int64_t w = 0; w < numbers; w += 32) {
        const int64_t left = numbers - w;
        const __mmask16 lo = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1u);
        const __mmask16 hi = left >= 32  ? 0xffff
                             : left > 16 ? static_cast<__mmask16>((1u << (left - 16)) - 1u)
                                         : 0;
        __m512 a = _mm512_setzero_ps(), c = _mm512_setzero_ps();
        if (q != nullptr) {
          a = _mm512_mul_ps(_mm512_maskz_loadu_ps(lo, q + w), scale);
          c = _mm512_mul_ps(_mm512_maskz_loadu_ps(hi, q + w + 16), scale);
        }
        const __m512i pairs = (__m512i)_mm512_cvtne2ps_pbh(c, a);
        const __mmask16 m = left >= 32 ? 0xffff : static_cast<__mmask16>((1u << (left / 2)) - 1u);
        _mm512_mask_i32scatter_epi32(panel + (w / 2 * pw + i) * 2, m, stride, pairs, 4);
      }
      if (b.odd) b.qt_last[r] = q ? q[it.width - 1] * s : 0.0f;
    }
  }
}

// Scores of JB keys for NV vectors of rows. The pairs run in segments: one for a bf16 cache;
// for codes, one per scale group (its sum times the key's scale, in float32) and the rope part.
// tmax (NV vectors of rows) takes the running max of the finished scores, in key order as
// softmax_tile would take it, which saves the softmax a pass over the tile.
template <int NV, int JB>
void qk_block_bf16(const uint16_t* panel, int64_t pw, const float* last,
                   const uint16_t* const* keys, const float* scales, const Bf16Layout& b,
                   int64_t width, float* s, int64_t rows_pad, float* tmax) {
  const int64_t segments = b.scales != nullptr ? b.groups + 1 : 1;
  for (int64_t g = 0; g < segments; ++g) {
    const bool scaled = g < segments - 1;
    const int64_t p0 = scaled ? g * (kQuantRowGroup / 2) : b.scales != nullptr ? b.rank_pairs : 0;
    const int64_t p1 = scaled ? min_i(p0 + kQuantRowGroup / 2, b.rank_pairs) : b.pairs;
    __m512 acc[JB][NV];
    for (int j = 0; j < JB; ++j)
      for (int v = 0; v < NV; ++v) acc[j][v] = _mm512_setzero_ps();
    for (int64_t w2 = p0; w2 < p1; ++w2) {
      __m512 q[NV];
      for (int v = 0; v < NV; ++v) q[v] = load_pairs(panel + (w2 * pw + v * 16) * 2);
      for (int j = 0; j < JB; ++j) {
        const __m512 k = bcast_pair(keys[j] + 2 * w2);
        for (int v = 0; v < NV; ++v) acc[j][v] = dot2(acc[j][v], q[v], k);
      }
    }
    if (!scaled && b.odd) {
      for (int j = 0; j < JB; ++j) {
        const __m512 k = _mm512_set1_ps(
            __builtin_bit_cast(float, static_cast<uint32_t>(keys[j][width - 1]) << 16));
        for (int v = 0; v < NV; ++v)
          acc[j][v] = _mm512_fmadd_ps(_mm512_load_ps(last + v * 16), k, acc[j][v]);
      }
    }
    for (int j = 0; j < JB; ++j) {
      const __m512 scale = _mm512_set1_ps(scaled ? scales[j * b.groups + g] : 1.0f);
      for (int v = 0; v < NV; ++v) {
        float* out = s + j * rows_pad + v * 16;
        const __m512 x = scaled ? _mm512_mul_ps(acc[j][v], scale) : acc[j][v];
        const __m512 y = g == 0 ? x : _mm512_add_ps(_mm512_load_ps(out), x);
        _mm512_store_ps(out, y);
        if (!scaled) acc[j][v] = y;  // the finished score
      }
    }
    if (scaled) continue;
    for (int v = 0; v < NV; ++v) {
      __m512 m = _mm512_load_ps(tmax + v * 16);
      for (int j = 0; j < JB; ++j) m = _mm512_max_ps(m, acc[j][v]);
      _mm512_store_ps(tmax + v * 16, m);
    }
  }
}

template <int NV>
void qk_keys_bf16(const uint16_t* panel, int64_t pw, const float* last, const uint16_t* const* keys,
                  int64_t n, const Bf16Layout& b, int64_t width, float* s, int64_t rows_pad,
                  float* tmax) {
  constexpr int kJb = V512::kQkKeys;
  const auto scales = [&b](int64_t j) { return b.scales + j * b.groups; };
  int64_t j = 0;
  for (; j + kJb <= n; j += kJb)
    qk_block_bf16<NV, kJb>(panel, pw, last, keys + j, scales(j), b, width, s + j * rows_pad,
                           rows_pad, tmax);
  for (; j + 2 <= n; j += 2)
    qk_block_bf16<NV, 2>(panel, pw, last, keys + j, scales(j), b, width, s + j * rows_pad, rows_pad,
                         tmax);
  for (; j < n; ++j)
    qk_block_bf16<NV, 1>(panel, pw, last, keys + j, scales(j), b, width, s + j * rows_pad, rows_pad,
                         tmax);
}

// Scores of the tile's n keys, and in tmax (rows_pad) each row's max over them.
void qk_tile_bf16(const LatentScratch& l, const Bf16Layout& b, int64_t width,
                  const uint16_t* const* keys, int64_t n, float* s, float* tmax) {
  constexpr int64_t kPw = V512::kW * V512::kQkRowVecs;
  for (int64_t r = 0; r < l.rows_pad; r += 16) _mm512_store_ps(tmax + r, _mm512_set1_ps(kMinusInf));
  for (int64_t p = 0; p * kPw < l.rows_pad; ++p) {
    const int64_t pw = panel_width<V512>(l, p);
    const uint16_t* panel = b.qt + p * kPw * 2 * b.pairs;
    const float* last = b.qt_last + p * kPw;
    float* sp = s + p * kPw;
    float* mp = tmax + p * kPw;
    switch (pw / 16) {
      case 1:
        qk_keys_bf16<1>(panel, pw, last, keys, n, b, width, sp, l.rows_pad, mp);
        break;
      case 2:
        qk_keys_bf16<2>(panel, pw, last, keys, n, b, width, sp, l.rows_pad, mp);
        break;
      case 3:
        qk_keys_bf16<3>(panel, pw, last, keys, n, b, width, sp, l.rows_pad, mp);
        break;
      default:
        qk_keys_bf16<V512::kQkRowVecs>(panel, pw, last, keys, n, b, width, sp, l.rows_pad, mp);
        break;
    }
  }
}

// As softmax_tile, but the probabilities go out as bf16 pairs of keys and the sums add the
// rounded values (a VDPBF16PS with ones), so that the weights P V really applies sum to the
// normaliser. The tile's max comes from the scores (tmax) unless the tile is causal, where
// hidden keys are masked first. NaN scores stay NaN through exp2_keep_nan, into the sum (the
// row's output is NaN, as softmax_tile makes it). keep_f32: the float32 probabilities also
// replace the scores in s, for scale_probs.
void softmax_tile_bf16(float* s, int64_t n, int64_t rows_pad, int64_t first_key, bool causal,
                       const float* tmax, bool keep_f32, const RowStats& st, uint16_t* probs) {
  const __m512bh ones = (__m512bh)_mm512_set1_epi16(0x3f80);
  for (int64_t r = 0; r < rows_pad; r += 16) {
    __m512 tile_max = _mm512_load_ps(tmax + r);
    if (causal) {
      const __m512i last = V512::load_i(st.last_key + r);
      tile_max = _mm512_set1_ps(kMinusInf);
      for (int64_t j = 0; j < n; ++j) {
        const __m512 x =
            V512::mask_after(_mm512_load_ps(s + j * rows_pad + r), first_key + j, last);
        _mm512_store_ps(s + j * rows_pad + r, x);
        tile_max = _mm512_max_ps(tile_max, x);
      }
    }
    const __m512 old_max = _mm512_load_ps(st.max + r);
    const __m512 new_max = _mm512_max_ps(old_max, tile_max);
    const __m512 base = V512::zero_if_minus_inf(new_max);
    const __m512 corr = V512::exp2(_mm512_sub_ps(old_max, base));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 2) {
      const __m512 xa = _mm512_load_ps(s + j * rows_pad + r);
      const __m512 pa = V512::exp2_keep_nan(_mm512_sub_ps(xa, base));
      __m512 pb = _mm512_setzero_ps();
      if (j + 1 < n)
        pb = V512::exp2_keep_nan(_mm512_sub_ps(_mm512_load_ps(s + (j + 1) * rows_pad + r), base));
      if (keep_f32) {
        _mm512_store_ps(s + j * rows_pad + r, pa);
        if (j + 1 < n) _mm512_store_ps(s + (j + 1) * rows_pad + r, pb);
      }
      const __m512i pairs = interleave_bf16(pa, pb);
      _mm512_store_si512(probs + (j / 2 * rows_pad + r) * 2, pairs);
      sum = _mm512_dpbf16_ps(sum, (__m512bh)pairs, ones);
    }
    _mm512_store_ps(st.max + r, new_max);
    _mm512_store_ps(st.sum + r, _mm512_fmadd_ps(_mm512_load_ps(st.sum + r), corr, sum));
    _mm512_store_ps(st.corr + r, corr);
  }
}

// Values (the first `rank` entries of each key row) as (pair of keys, rank_pad, 2) bf16, zero
// past the tile's last key and past `rank`: 32 columns of both keys per step, interleaved by
// two word permutes (as decode_pair_bf16 does for codes).
void pack_values_bf16(const uint16_t* const* keys, int64_t n, int64_t rank, int64_t rank_pad,
                      uint16_t* out) {
  const __m512i lo_idx =
      _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                       37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
  for (int64_t j = 0; j < n; j += 2) {
    const uint16_t* a = keys[j];
    const uint16_t* b = j + 1 < n ? keys[j + 1] : nullptr;
    uint16_t* dst = out + j / 2 * rank_pad * 2;
    for (int64_t c = 0; c < rank_pad; c += 32) {
      __m512i va, vb = _mm512_setzero_si512();
      if (c + 32 <= rank) {
        va = _mm512_loadu_si512(a + c);
        if (b != nullptr) vb = _mm512_loadu_si512(b + c);
      } else {
        const __mmask32 m = c < rank ? first32(rank - c) : 0;
        va = _mm512_maskz_loadu_epi16(m, a + c);
        if (b != nullptr) vb = _mm512_maskz_loadu_epi16(m, b + c);
      }
      _mm512_store_si512(dst + c * 2, _mm512_permutex2var_epi16(va, lo_idx, vb));
      if (c + 16 < rank_pad)
        _mm512_store_si512(dst + (c + 16) * 2, _mm512_permutex2var_epi16(va, hi_idx, vb));
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

// Columns [c0, c1) of acc (multiples of 16).
void pv_tile_bf16(float* acc, const LatentScratch& l, const float* corr, const uint16_t* probs,
                  const uint16_t* values, int64_t n, int64_t c0, int64_t c1) {
  constexpr int64_t kChunk = 16 * V512::kPvVecs;
  const int64_t pairs = (n + 1) / 2;
  int64_t col = c0;
  for (; col + kChunk <= c1; col += kChunk)
    pv_columns_bf16<V512::kPvVecs>(acc + col, l, corr, probs, values + col * 2, pairs);
  if (col + 32 <= c1) {
    pv_columns_bf16<2>(acc + col, l, corr, probs, values + col * 2, pairs);
    col += 32;
  }
  if (col < c1) pv_columns_bf16<1>(acc + col, l, corr, probs, values + col * 2, pairs);
}

// Per scale group g, the probabilities of keys [0, count) times each key's scale of g, as bf16
// pairs of keys (rounded once, from float32): P V over codes then weighs every value column by
// its own group's scale. Keys from `count` on get 0 (not 0 x scale: a NaN scale stays out).
void scale_probs(const float* s, int64_t count, int64_t n, int64_t rows_pad, const Bf16Layout& b) {
  for (int64_t g = 0; g < b.groups; ++g) {
    uint16_t* out = b.group_probs + g * (simd::kLatentTileBf16 * rows_pad);
    for (int64_t j = 0; j < n; j += 2) {
      const __m512 sa = _mm512_set1_ps(j < count ? b.scales[j * b.groups + g] : 0.0f);
      const __m512 sb = _mm512_set1_ps(j + 1 < count ? b.scales[(j + 1) * b.groups + g] : 0.0f);
      for (int64_t r = 0; r < rows_pad; r += 16) {
        const __m512 pa = j < count ? _mm512_mul_ps(_mm512_load_ps(s + j * rows_pad + r), sa)
                                    : _mm512_setzero_ps();
        const __m512 pb = j + 1 < count
                              ? _mm512_mul_ps(_mm512_load_ps(s + (j + 1) * rows_pad + r), sb)
                              : _mm512_setzero_ps();
        _mm512_store_si512(out + (j / 2 * rows_pad + r) * 2, interleave_bf16(pa, pb));
      }
    }
  }
}

// P V of a quantized tile (keys [0, count) of n): each scale group's columns with its
// probabilities.
void pv_tile_quant(float* acc, const LatentScratch& l, const float* corr, const float* s,
                   int64_t count, int64_t n, const Bf16Layout& b) {
  scale_probs(s, count, n, l.rows_pad, b);
  for (int64_t g = 0; g < b.groups; ++g) {
    const int64_t c0 = g * kQuantRowGroup, c1 = min_i(c0 + kQuantRowGroup, l.rank_pad);
    pv_tile_bf16(acc, l, corr, b.group_probs + g * (simd::kLatentTileBf16 * l.rows_pad), b.values,
                 count, c0, c1);
  }
}

inline bool scales_non_finite(const Bf16Layout& b, int64_t from, int64_t n) {
  for (int64_t i = from * b.groups; i < n * b.groups; ++i)
    if (non_finite_bits(__builtin_bit_cast(uint32_t, b.scales[i]))) return true;
  return false;
}

}  // namespace

namespace simd {

void latent_item_avx512bf16(const LatentItem& it) {
  // An odd rank would put a code and a rope number in one pair (never in DeepSeek's shapes).
  if (it.kv.dtype == DType::kF32 || (is_quantized(it.kv.dtype) && it.rank % 2 != 0)) {
    latent_item_avx512(it);
    return;
  }
  const LatentScratch l = latent_scratch(item_rows(it), it.width, it.rank);
  const bool quant = is_quantized(it.kv.dtype);
  Bf16Layout b;
  b.pairs = it.width / 2;
  b.odd = it.width % 2 != 0;
  b.qt = reinterpret_cast<uint16_t*>(it.scratch + l.qt);
  // The keys block: bf16 keys of a quantized tile, then qt_last (latent_scratch sizes it).
  uint16_t* decoded = reinterpret_cast<uint16_t*>(it.scratch + l.keys);
  b.qt_last = it.scratch + l.keys + kLatentTileBf16 * l.width_pad / 2;
  // A bf16 cache's probabilities overwrite the scores they come from: pair k of keys takes
  // exactly key k's score row (rows_pad floats), which the softmax has read by then. 49 KiB
  // less in L2 for a 192-key tile of 128 rows, 2% (batch 1) to 4% (batch 8) faster. Quantized
  // tiles keep the float32 probabilities there for scale_probs.
  b.probs = reinterpret_cast<uint16_t*>(it.scratch + (quant ? l.probs_bf16 : l.scores));
  b.values = reinterpret_cast<uint16_t*>(it.scratch + l.values_bf16);
  float* tile_scales = it.scratch + l.quant_scales;
  if (quant) {
    b.scales = tile_scales;
    b.groups = (it.rank + kQuantRowGroup - 1) / kQuantRowGroup;
    b.rank_pairs = it.rank / 2;
    b.group_probs = reinterpret_cast<uint16_t*>(it.scratch + l.group_probs);
  }
  float* s = it.scratch + l.scores;
  float* acc = item_acc(it, l);
  const uint16_t** keys = reinterpret_cast<const uint16_t**>(it.scratch + l.pointers);
  pack_queries_bf16(it, l, b);
  const RowStats st = init_stats(it, l, it.scratch);
  for (int64_t i = 0; i < l.rows_pad * l.rank_pad; ++i) acc[i] = 0.0f;
  const int64_t first_limit = it.context_before + it.t0, last_limit = it.context_before + it.t1 - 1;
  float* tmax = it.scratch + l.stats + 4 * l.rows_pad;
  for (int64_t j0 = it.k0; j0 < it.k1 && j0 <= last_limit; j0 += kLatentTileBf16) {
    const int64_t n = min_i(kLatentTileBf16, it.k1 - j0);
    for (int64_t j = 0; j < n; j += quant ? 2 : 1) {
      if (!quant) {
        keys[j] = reinterpret_cast<const uint16_t*>(kv_row(it.kv, j0 + j, 2));
        continue;
      }
      prefetch_quant_row(it, j0 + n + j);
      prefetch_quant_row(it, j0 + n + j + 1);
      const auto* ka = reinterpret_cast<const unsigned char*>(kv_row(it.kv, j0 + j, 1));
      const auto* kb = j + 1 < n
                           ? reinterpret_cast<const unsigned char*>(kv_row(it.kv, j0 + j + 1, 1))
                           : nullptr;
      uint16_t* da = decoded + j * l.width_pad;
      uint16_t* db = da + l.width_pad;
      uint16_t* values = b.values + j / 2 * l.rank_pad * 2;
      if (it.kv.dtype == DType::kF8E4M3) {
        decode_pair_bf16<true>(ka, kb, it.rank, it.width, l.rank_pad, da, db, values,
                               tile_scales + j * b.groups);
      } else {
        decode_pair_bf16<false>(ka, kb, it.rank, it.width, l.rank_pad, da, db, values,
                                tile_scales + j * b.groups);
      }
      keys[j] = da;
      if (j + 1 < n) keys[j + 1] = db;
    }
    qk_tile_bf16(l, b, it.width, keys, n, s, tmax);
    softmax_tile_bf16(s, n, l.rows_pad, j0, j0 + n - 1 > first_limit, tmax, quant, st, b.probs);
    // As in latent_item_f32: masked keys with a non-finite value must not be multiplied in (a
    // quantized value is non-finite through its group's scale).
    const int64_t shared = keys_seen_by_all(it, j0, n);
    const bool slow = shared < n && (quant ? scales_non_finite(b, shared, n)
                                           : values_non_finite_bf16(keys, shared, n, it.rank));
    const int64_t count = slow ? shared : n;
    if (!quant || slow) pack_values_bf16(keys, count, it.rank, l.rank_pad, b.values);
    if (quant) {
      pv_tile_quant(acc, l, st.corr, s, count, n, b);  // also applies corr
    } else {
      pv_tile_bf16(acc, l, st.corr, b.probs, b.values, count, 0, l.rank_pad);
    }
    if (!slow) continue;
    const auto value = [&](int64_t j, int64_t c) {
      const float code = __builtin_bit_cast(float, static_cast<uint32_t>(keys[j][c]) << 16);
      return quant ? code * b.scales[j * b.groups + c / kQuantRowGroup] : code;
    };
    if (quant) {
      pv_visible_only(
          acc, l, it, st, j0, shared, n,
          [&](int64_t j, int64_t r) { return s[j * l.rows_pad + r]; }, value);
    } else {
      pv_visible_only(
          acc, l, it, st, j0, shared, n,
          [&](int64_t j, int64_t r) {
            const uint16_t bits = b.probs[(j / 2 * l.rows_pad + r) * 2 + j % 2];
            return __builtin_bit_cast(float, static_cast<uint32_t>(bits) << 16);
          },
          value);
    }
  }
  finish_item<V512>(it, l, acc, st);
}

}  // namespace simd
}  // namespace mla::ops
