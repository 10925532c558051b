#include "ops/flash_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "mla/dtype.h"
#include "mla/error.h"
#include "ops/cpu_features.h"
#include "ops/gemm.h"
#include "ops/parallel.h"
#include "ops/simd/attention_kernels.h"

namespace mla::ops {
namespace {

// Keys per tile: S is (rows, 64). With 512 query rows per item, naive prefill (1024 tokens, 16
// and 128 heads, one thread) took 10-20% less CPU time with 64 keys than with 256 or 128
// (S and the value tile stay in L1/L2 beside the query block); 32 was no better.
constexpr int64_t kKeyTile = 64;
constexpr int64_t kMaxRows = 512;       // query rows (tokens x heads of a group) per work item
constexpr int64_t kMinSplitKeys = 512;  // never split a context into parts shorter than this
constexpr float kNoKey = -std::numeric_limits<float>::infinity();

struct ThreadScratch {
  std::vector<float> q;       // (rows, qk_dim) gathered queries of the item
  std::vector<float> scores;  // (rows, kKeyTile)
  std::vector<float> acc;     // (rows, v_dim) when the item is not split
  std::vector<float> max, sum;
  std::vector<float> k_tile, v_tile;  // bf16 rows widened to f32
};

ThreadScratch& scratch() {
  thread_local ThreadScratch s;
  return s;
}

void grow(std::vector<float>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

int64_t group_size(const AttentionParams& p) {
  return p.num_heads / p.num_kv_heads;
}

// Row `row` of an item is query token t0 + row / gs, head g * gs + row % gs.
float* out_row(const AttentionParams& p, int64_t g, int64_t t0, int64_t row) {
  const int64_t gs = group_size(p);
  return p.out + (t0 + row / gs) * p.out_token_stride + (g * gs + row % gs) * p.out_head_stride;
}

// Values alias the keys (absorbed MLA): the value tile is the key tile's first v_dim columns.
bool values_in_keys(const AttentionParams& p) {
  return p.v.base == p.k.base && p.v.pages == p.k.pages && p.v.offset == p.k.offset &&
         p.v.dtype == p.k.dtype && p.v_head_stride == p.k_head_stride && p.v_dim <= p.qk_dim;
}

// Pointer to `n` rows starting at token j0 of `view` (KV head offset applied), widened to f32
// in `tile` when stored as bf16; sets the leading dimension.
const float* tile_rows(const KvView& view, int64_t head_offset, int64_t width, int64_t j0,
                       int64_t n, std::vector<float>& tile, int64_t* ld) {
  if (view.dtype == DType::kF32) {
    *ld = view.token_stride;
    return view.row<float>(j0) + head_offset;
  }
  grow(tile, kKeyTile * width);
  for (int64_t j = 0; j < n; ++j) {
    convert_to_f32(view.row<uint16_t>(j0 + j) + head_offset, DType::kBF16,
                   static_cast<size_t>(width), tile.data() + j * width);
  }
  *ld = width;
  return tile.data();
}

int64_t page_end(const KvView& view, int64_t j) {
  return view.pages == nullptr ? std::numeric_limits<int64_t>::max()
                               : (j / view.page_size + 1) * view.page_size;
}

bool any_non_finite(const float* rows, int64_t ld, int64_t n, int64_t width) {
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t c = 0; c < width; ++c) {
      if (!std::isfinite(rows[j * ld + c])) return true;
    }
  }
  return false;
}

// acc[row0 + i] += P[i] V over the n keys of a tile from j0, for the `active` rows from token
// t_first. Keys past a row's causal limit have probability 0, but 0 x NaN (or x inf) is NaN:
// one non-finite value row of a later token would poison every earlier token's output. So when
// a value a row may not see is non-finite, each partly masked token multiplies only the keys it
// sees; otherwise one product covers the tile (0 x finite = 0 exactly, the same result).
void accumulate_values(const AttentionParams& p, int64_t t0, int64_t t_first, int64_t j0, int64_t n,
                       const float* probs, const float* values, int64_t ldv, float* acc,
                       int64_t row0, int64_t active) {
  const int64_t gs = group_size(p), dv = p.v_dim;
  // Tokens from t_full on see the whole tile; earlier ones see fewer keys, t_first the fewest.
  const int64_t t_end = t_first + active / gs;
  const int64_t t_full = std::min(t_end, std::max(t_first, j0 + n - 1 - p.context_before));
  const int64_t fewest = std::min(n, p.context_before + t_first + 1 - j0);
  if (t_full == t_first || !any_non_finite(values + fewest * ldv, ldv, n - fewest, dv)) {
    gemm(false, false, active, dv, n, 1.0f, probs, kKeyTile, values, ldv, 1.0f, acc + row0 * dv,
         dv);
    return;
  }
  const int64_t full0 = (t_full - t0) * gs, full_rows = row0 + active - full0;
  if (full_rows > 0) {
    gemm(false, false, full_rows, dv, n, 1.0f, probs + (full0 - row0) * kKeyTile, kKeyTile, values,
         ldv, 1.0f, acc + full0 * dv, dv);
  }
  for (int64_t t = t_first; t < t_full; ++t) {
    const int64_t visible = p.context_before + t + 1 - j0, r = (t - t0) * gs;
    gemm(false, false, gs, dv, visible, 1.0f, probs + (r - row0) * kKeyTile, kKeyTile, values, ldv,
         1.0f, acc + r * dv, dv);
  }
}

using SoftmaxRowFn = void (*)(float*, int64_t, int64_t, float*, float*, float*, int64_t);

// The online softmax of a tile's rows on whole vectors where the CPU has them: with libm's
// scalar exp it took as long as the two sgemm calls of the tile together (perf, naive prefill).
// nullptr: the scalar pass below.
SoftmaxRowFn softmax_row_kernel() {
  const SimdLevel level = simd_level();
  if (level >= SimdLevel::kAvx512) return simd::softmax_tile_row_avx512;
  if (level >= SimdLevel::kAvx2) return simd::softmax_tile_row_avx2;
  return nullptr;
}

// Queries [t0, t1) x the heads of KV group g over keys [k0, k1): unnormalised acc (rows, v_dim),
// running max and sum.
void run_item(const AttentionParams& p, int64_t g, int64_t t0, int64_t t1, int64_t k0, int64_t k1,
              float* acc, float* mx, float* sm) {
  const int64_t gs = group_size(p), rows = (t1 - t0) * gs, dq = p.qk_dim, dv = p.v_dim;
  ThreadScratch& s = scratch();
  grow(s.q, rows * dq);
  grow(s.scores, rows * kKeyTile);
  for (int64_t row = 0; row < rows; ++row) {
    const float* src =
        p.q + (t0 + row / gs) * p.q_token_stride + (g * gs + row % gs) * p.q_head_stride;
    std::copy_n(src, dq, s.q.data() + row * dq);
  }
  std::fill_n(acc, rows * dv, 0.0f);
  std::fill_n(mx, rows, kNoKey);
  std::fill_n(sm, rows, 0.0f);
  const bool shared_values = values_in_keys(p);
  const SoftmaxRowFn softmax_row = softmax_row_kernel();
  for (int64_t j0 = k0; j0 < k1;) {
    // A tile never crosses a page, so its rows are evenly strided in memory.
    const int64_t j1 = std::min({j0 + kKeyTile, k1, page_end(p.k, j0), page_end(p.v, j0)});
    const int64_t n = j1 - j0;
    // Queries before t_first see no key of this tile (causal), nor of any later tile.
    const int64_t t_first = std::max(t0, j0 - p.context_before);
    if (t_first >= t1) break;
    const int64_t row0 = (t_first - t0) * gs, active = rows - row0;

    int64_t ldk = 0, ldv = 0;
    const float* keys = tile_rows(p.k, g * p.k_head_stride, dq, j0, n, s.k_tile, &ldk);
    const float* values =
        shared_values ? keys : tile_rows(p.v, g * p.v_head_stride, dv, j0, n, s.v_tile, &ldv);
    if (shared_values) ldv = ldk;
    float* sc = s.scores.data();
    gemm(false, true, active, n, dq, p.scale, s.q.data() + row0 * dq, dq, keys, ldk, 0.0f, sc,
         kKeyTile);

    for (int64_t i = 0; i < active; ++i) {
      const int64_t row = row0 + i;
      const int64_t visible = std::min(n, p.context_before + t0 + row / gs + 1 - j0);
      float* srow = sc + i * kKeyTile;
      if (softmax_row != nullptr) {
        softmax_row(srow, visible, n, mx + row, sm + row, acc + row * dv, dv);
        continue;
      }
      float tile_max = kNoKey;
      for (int64_t j = 0; j < visible; ++j) tile_max = std::max(tile_max, srow[j]);
      const float new_max = std::max(mx[row], tile_max);
      const float correction = std::exp(mx[row] - new_max);
      float tile_sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) {
        srow[j] = std::exp(srow[j] - new_max);
        tile_sum += srow[j];
      }
      std::fill(srow + visible, srow + n, 0.0f);
      sm[row] = sm[row] * correction + tile_sum;
      mx[row] = new_max;
      if (correction != 1.0f) {
        float* a = acc + row * dv;
        for (int64_t c = 0; c < dv; ++c) a[c] *= correction;
      }
    }
    accumulate_values(p, t0, t_first, j0, n, sc, values, ldv, acc, row0, active);
    j0 = j1;
  }
}

}  // namespace

void flash_attention(std::span<const AttentionParams> seqs, FlashWorkspace& ws) {
  for (const AttentionParams& p : seqs) {
    for (const KvView* view : {&p.k, &p.v}) {
      if (view->dtype != DType::kF32 && view->dtype != DType::kBF16)  // quantized: latent only
        throw Error("flash_attention: cache dtype must be F32 or BF16, got " +
                    std::string(dtype_name(view->dtype)));
    }
  }
  const int threads = omp_get_max_threads();
  // Work items: (sequence, KV group, block of queries); when they are fewer than the threads,
  // each block's context is split into parts, laid out next to each other for the merge.
  int64_t blocks = 0;
  for (const AttentionParams& p : seqs) {
    const int64_t block = std::max<int64_t>(1, kMaxRows / group_size(p));
    blocks += p.num_kv_heads * ((p.num_queries + block - 1) / block);
  }
  if (blocks == 0) return;
  int64_t parts = ws.force_split;
  if (parts == 0 && blocks < threads) parts = (threads + blocks - 1) / blocks;
  parts = std::max<int64_t>(parts, 1);
  ws.items.clear();
  size_t partial_floats = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const AttentionParams& p = seqs[s];
    const int64_t gs = group_size(p), block = std::max<int64_t>(1, kMaxRows / gs);
    for (int64_t g = 0; g < p.num_kv_heads; ++g) {
      for (int64_t t0 = 0; t0 < p.num_queries; t0 += block) {
        const int64_t t1 = std::min(t0 + block, p.num_queries), keys = p.context_before + t1;
        int64_t n_parts = parts;
        if (ws.force_split == 0)
          n_parts = std::min(n_parts, std::max<int64_t>(1, keys / kMinSplitKeys));
        n_parts = std::min(n_parts, keys);
        const int64_t per = (keys + n_parts - 1) / n_parts;
        for (int64_t part = 0; part < n_parts; ++part) {
          FlashWorkspace::Item item{static_cast<int64_t>(s),          g,    t0,      t1, part * per,
                                    std::min(keys, (part + 1) * per), part, n_parts, 0};
          if (n_parts > 1) {
            item.partial = partial_floats;
            partial_floats += static_cast<size_t>((t1 - t0) * gs * (p.v_dim + 2));
          }
          ws.items.push_back(item);
        }
      }
    }
  }
  if (ws.partials.size() < partial_floats) ws.partials.resize(partial_floats);
  const std::vector<FlashWorkspace::Item>& items = ws.items;

  // Every thread sizes its scratch for the largest item before taking any: with dynamic
  // scheduling, which thread runs which item varies between calls, and growing on first use
  // would allocate in a warm decode step whenever a thread meets a larger item than before.
  int64_t q_floats = 0, score_floats = 0, acc_floats = 0, max_rows = 0, k_floats = 0, v_floats = 0;
  for (const FlashWorkspace::Item& it : items) {
    const AttentionParams& p = seqs[static_cast<size_t>(it.seq)];
    const int64_t rows = (it.t1 - it.t0) * group_size(p);
    q_floats = std::max(q_floats, rows * p.qk_dim);
    score_floats = std::max(score_floats, rows * kKeyTile);
    acc_floats = std::max(acc_floats, rows * p.v_dim);
    max_rows = std::max(max_rows, rows);
    if (p.k.dtype != DType::kF32) k_floats = std::max(k_floats, kKeyTile * p.qk_dim);
    if (p.v.dtype != DType::kF32) v_floats = std::max(v_floats, kKeyTile * p.v_dim);
  }

  double work = 0;  // multiply-adds of every item's scores and P V (ops/parallel.h)
  for (const FlashWorkspace::Item& it : items) {
    const AttentionParams& p = seqs[static_cast<size_t>(it.seq)];
    work += static_cast<double>((it.t1 - it.t0) * group_size(p)) * (it.k1 - it.k0) *
            (p.qk_dim + p.v_dim);
  }
#pragma omp parallel if (items.size() > 1 && worth_parallel(work))
  {
    ThreadScratch& mine = scratch();
    grow(mine.q, q_floats);
    grow(mine.scores, score_floats);
    grow(mine.acc, acc_floats);
    grow(mine.max, max_rows);
    grow(mine.sum, max_rows);
    grow(mine.k_tile, k_floats);
    grow(mine.v_tile, v_floats);
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < items.size(); ++i) {
      const FlashWorkspace::Item& it = items[i];
      const AttentionParams& p = seqs[static_cast<size_t>(it.seq)];
      const int64_t rows = (it.t1 - it.t0) * group_size(p), dv = p.v_dim;
      float *acc, *mx, *sm;
      if (it.parts > 1) {
        acc = ws.partials.data() + it.partial;
        mx = acc + rows * dv;
        sm = mx + rows;
      } else {
        ThreadScratch& s = scratch();
        grow(s.acc, rows * dv);
        grow(s.max, rows);
        grow(s.sum, rows);
        acc = s.acc.data();
        mx = s.max.data();
        sm = s.sum.data();
      }
      run_item(p, it.group, it.t0, it.t1, it.k0, it.k1, acc, mx, sm);
      if (it.parts == 1) {
        for (int64_t row = 0; row < rows; ++row) {
          const float inv = 1.0f / sm[row];
          float* o = out_row(p, it.group, it.t0, row);
          for (int64_t c = 0; c < dv; ++c) o[c] = acc[row * dv + c] * inv;
        }
      }
    }
  }

  // Merge split parts: rescale each part's sums to the common maximum (log-sum-exp).
  for (size_t i = 0; i < items.size(); i += static_cast<size_t>(items[i].parts)) {
    const FlashWorkspace::Item& first = items[i];
    if (first.parts == 1) continue;
    const AttentionParams& p = seqs[static_cast<size_t>(first.seq)];
    const int64_t rows = (first.t1 - first.t0) * group_size(p), dv = p.v_dim;
    const size_t end = i + static_cast<size_t>(first.parts);
#pragma omp parallel for schedule(static) if (worth_parallel(static_cast <double>(rows) * dv * 8))
    for (int64_t row = 0; row < rows; ++row) {
      // Parts starting past the query's last visible key saw nothing of it. Decided by
      // position, not by the part's max: NaN or -inf scores (a non-finite cache row) leave the
      // max at -inf, and their non-finite output must not be dropped.
      const int64_t last_key = p.context_before + first.t0 + row / group_size(p);
      float m = kNoKey;
      for (size_t k = i; k < end; ++k)
        m = std::max(m, ws.partials[items[k].partial + static_cast<size_t>(rows * dv + row)]);
      float total = 0.0f;
      for (size_t k = i; k < end; ++k) {
        const float* base = ws.partials.data() + items[k].partial;
        if (items[k].k0 <= last_key)
          total += base[rows * dv + rows + row] * std::exp(base[rows * dv + row] - m);
      }
      float* o = out_row(p, first.group, first.t0, row);
      std::fill_n(o, dv, 0.0f);
      for (size_t k = i; k < end; ++k) {
        const float* base = ws.partials.data() + items[k].partial;
        if (items[k].k0 > last_key) continue;  // this part saw no key of this query
        const float w = std::exp(base[rows * dv + row] - m) / total;
        for (int64_t c = 0; c < dv; ++c) o[c] += w * base[row * dv + c];
      }
    }
  }
}

}  // namespace mla::ops
