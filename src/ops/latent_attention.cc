#include "ops/latent_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "mla/dtype.h"
#include "ops/gemm.h"

namespace mla::ops {
namespace {

constexpr int64_t kKeyTile = 256;     // keys per tile: S is (rows, 256)
constexpr int64_t kMaxRows = 512;     // query rows (tokens x heads) per work item
constexpr int64_t kMinSplitKeys = 512;  // never split a context into parts shorter than this

struct ThreadScratch {
  std::vector<float> scores;  // (rows, kKeyTile)
  std::vector<float> acc;     // (rows, R) when the item is not split
  std::vector<float> max, sum;
  std::vector<float> tile;    // (kKeyTile, R + Dr) bf16 rows widened to f32
};

ThreadScratch& scratch() {
  thread_local ThreadScratch s;
  return s;
}

void grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Runs one work item: queries [t0, t1) of a sequence (all heads) over keys [k0, k1).
// Leaves unnormalised acc (rows, R), running max and sum in the given buffers.
void run_item(const LatentAttentionParams& p, const LatentAttentionShape& sh, int64_t t0, int64_t t1, int64_t k0,
              int64_t k1, float* acc, float* mx, float* sm) {
  const int64_t h = sh.num_heads, r = sh.rank, width = sh.rank + sh.rope_dim;
  const int64_t rows = (t1 - t0) * h;
  ThreadScratch& s = scratch();
  grow(s.scores, static_cast<size_t>(rows * kKeyTile));
  std::fill_n(acc, rows * r, 0.0f);
  std::fill_n(mx, rows, -std::numeric_limits<float>::infinity());
  std::fill_n(sm, rows, 0.0f);
  const float* q = p.q + t0 * h * width;
  for (int64_t j0 = k0; j0 < k1;) {
    // A tile never crosses a page, so its rows are evenly strided in memory.
    int64_t j1 = std::min(j0 + kKeyTile, k1);
    if (p.kv.pages != nullptr) j1 = std::min(j1, (j0 / p.kv.page_size + 1) * p.kv.page_size);
    const int64_t n = j1 - j0;
    // Queries before t_first cannot see any key of this tile (causal), nor of later tiles.
    const int64_t t_first = std::max(t0, j0 - p.context_before);
    if (t_first >= t1) break;
    const int64_t row0 = (t_first - t0) * h, active = rows - row0;

    const float* keys;
    int64_t ldk;
    if (p.kv.dtype == DType::kBF16) {
      grow(s.tile, static_cast<size_t>(kKeyTile * width));
      for (int64_t j = 0; j < n; ++j) {
        convert_to_f32(p.kv.row<uint16_t>(j0 + j), DType::kBF16, static_cast<size_t>(width), s.tile.data() + j * width);
      }
      keys = s.tile.data();
      ldk = width;
    } else {
      keys = p.kv.row<float>(j0);
      ldk = p.kv.token_stride;
    }
    float* sc = s.scores.data();
    gemm(false, true, active, n, width, sh.scale, q + row0 * width, width, keys, ldk, 0.0f, sc, kKeyTile);

    for (int64_t i = 0; i < active; ++i) {
      const int64_t row = row0 + i;
      const int64_t t = t0 + row / h;
      const int64_t visible = std::min(n, p.context_before + t + 1 - j0);  // keys of this tile it sees
      float* srow = sc + i * kKeyTile;
      float tile_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < visible; ++j) tile_max = std::max(tile_max, srow[j]);
      const float new_max = std::max(mx[row], tile_max);
      const float correction = std::exp(mx[row] - new_max);
      float tile_sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) {
        srow[j] = std::exp(srow[j] - new_max);
        tile_sum += srow[j];
      }
      for (int64_t j = visible; j < n; ++j) srow[j] = 0.0f;
      sm[row] = sm[row] * correction + tile_sum;
      mx[row] = new_max;
      if (correction != 1.0f) {
        float* a = acc + row * r;
        for (int64_t c = 0; c < r; ++c) a[c] *= correction;
      }
    }
    // O (active, R) += P (active, n) * V (n, R); V is the first R entries of each key row.
    gemm(false, false, active, r, n, 1.0f, sc, kKeyTile, keys, ldk, 1.0f, acc + row0 * r, r);
    j0 = j1;
  }
}

}  // namespace

void latent_attention(std::span<const LatentAttentionParams> seqs, const LatentAttentionShape& sh,
                      LatentAttentionWorkspace& ws) {
  const int64_t h = sh.num_heads, r = sh.rank;
  const int64_t block = std::max<int64_t>(1, kMaxRows / h);  // query tokens per item
  const int threads = omp_get_max_threads();

  // Work items: blocks of queries per sequence; when they are fewer than the threads, each
  // block's context is split into parts, laid out next to each other for the merge.
  size_t blocks = 0;
  for (const LatentAttentionParams& p : seqs) blocks += static_cast<size_t>((p.num_queries + block - 1) / block);
  int64_t parts = ws.force_split;
  if (parts == 0 && static_cast<int64_t>(blocks) < threads) {
    parts = (threads + static_cast<int64_t>(blocks) - 1) / static_cast<int64_t>(blocks);
  }
  parts = std::max<int64_t>(parts, 1);
  ws.items.clear();
  size_t partial_floats = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int64_t t0 = 0; t0 < seqs[s].num_queries; t0 += block) {
      const int64_t t1 = std::min(t0 + block, seqs[s].num_queries);
      const int64_t keys = seqs[s].context_before + t1;
      int64_t p = parts;
      if (ws.force_split == 0) p = std::min(p, std::max<int64_t>(1, keys / kMinSplitKeys));
      p = std::min(p, keys);
      const int64_t per = (keys + p - 1) / p;
      for (int64_t part = 0; part < p; ++part) {
        LatentAttentionWorkspace::Item item{static_cast<int64_t>(s), t0, t1, part * per,
                                            std::min(keys, (part + 1) * per), part, p, 0};
        if (p > 1) {
          item.partial = partial_floats;
          partial_floats += static_cast<size_t>((t1 - t0) * h * (r + 2));
        }
        ws.items.push_back(item);
      }
    }
  }
  grow(ws.partials, partial_floats);
  const std::vector<LatentAttentionWorkspace::Item>& items = ws.items;

#pragma omp parallel for schedule(dynamic, 1) if (items.size() > 1)
  for (size_t i = 0; i < items.size(); ++i) {
    const LatentAttentionWorkspace::Item& it = items[i];
    const LatentAttentionParams& p = seqs[static_cast<size_t>(it.seq)];
    const int64_t rows = (it.t1 - it.t0) * h;
    float *acc, *mx, *sm;
    if (it.parts > 1) {
      acc = ws.partials.data() + it.partial;
      mx = acc + rows * r;
      sm = mx + rows;
    } else {
      ThreadScratch& s = scratch();
      grow(s.acc, static_cast<size_t>(rows * r));
      grow(s.max, static_cast<size_t>(rows));
      grow(s.sum, static_cast<size_t>(rows));
      acc = s.acc.data();
      mx = s.max.data();
      sm = s.sum.data();
    }
    run_item(p, sh, it.t0, it.t1, it.k0, it.k1, acc, mx, sm);
    if (it.parts == 1) {
      float* out = p.out + it.t0 * h * r;
      for (int64_t row = 0; row < rows; ++row) {
        const float inv = 1.0f / sm[row];
        for (int64_t c = 0; c < r; ++c) out[row * r + c] = acc[row * r + c] * inv;
      }
    }
  }

  // Merge split parts: rescale each part's sums to the common maximum (log-sum-exp).
  constexpr float kNoKey = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < items.size(); i += static_cast<size_t>(items[i].parts)) {
    const LatentAttentionWorkspace::Item& first = items[i];
    if (first.parts == 1) continue;
    const LatentAttentionParams& p = seqs[static_cast<size_t>(first.seq)];
    const int64_t rows = (first.t1 - first.t0) * h;
    const size_t group_end = i + static_cast<size_t>(first.parts);
    float* out = p.out + first.t0 * h * r;
#pragma omp parallel for schedule(static) if (rows * r > 8192)
    for (int64_t row = 0; row < rows; ++row) {
      float m = kNoKey;
      for (size_t k = i; k < group_end; ++k) m = std::max(m, ws.partials[items[k].partial + static_cast<size_t>(rows * r + row)]);
      float total = 0.0f;
      for (size_t k = i; k < group_end; ++k) {
        const float* base = ws.partials.data() + items[k].partial;
        if (base[rows * r + row] != kNoKey) total += base[rows * r + rows + row] * std::exp(base[rows * r + row] - m);
      }
      float* o = out + row * r;
      std::fill_n(o, r, 0.0f);
      for (size_t k = i; k < group_end; ++k) {
        const float* base = ws.partials.data() + items[k].partial;
        if (base[rows * r + row] == kNoKey) continue;  // this part saw no key of this query
        const float w = std::exp(base[rows * r + row] - m) / total;
        for (int64_t c = 0; c < r; ++c) o[c] += w * base[row * r + c];
      }
    }
  }
}

}  // namespace mla::ops
