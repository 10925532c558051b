#include "ops/latent_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <string>

#include "mla/error.h"
#include "mla/quantized_row.h"
#include "ops/cpu_features.h"
#include "ops/kernel_choice.h"
#include "ops/parallel.h"
#include "ops/simd/latent_kernels.h"

namespace mla::ops {
namespace simd {

namespace {
int64_t round_up(int64_t x, int64_t to) {
  return (x + to - 1) / to * to;
}
}  // namespace

LatentScratch latent_scratch(int64_t rows, int64_t width, int64_t rank) {
  LatentScratch l{};
  l.rows_pad = round_up(std::max<int64_t>(rows, 1), kLatentPad);
  l.width_pad = round_up(width, kLatentPad);
  l.rank_pad = round_up(rank, kLatentPad);
  size_t at = 0;
  auto take = [&at](int64_t floats) {
    const size_t start = at;
    at += static_cast<size_t>(round_up(floats, kLatentPad));
    return start;
  };
  l.qt = take(l.width_pad * l.rows_pad);
  constexpr int64_t tile = kLatentTileMax;
  l.scores = take(tile * l.rows_pad);
  l.probs_bf16 = take(tile * l.rows_pad / 2);
  // f32 keys, or (avx512bf16) bf16 keys then the last query column.
  l.keys =
      take(std::max(kLatentTile * l.width_pad, kLatentTileBf16 * l.width_pad / 2 + l.rows_pad));
  l.values_bf16 = take(tile * l.rank_pad / 2);
  l.acc = take(l.rows_pad * l.rank_pad);
  const int64_t groups = (rank + kQuantGroup - 1) / kQuantGroup;
  l.quant_scales = take(tile * groups);
  l.group_probs = take(groups * tile * l.rows_pad / 2);
  l.stats = take(5 * l.rows_pad);
  l.pointers = take(2 * tile);
  l.total = at;
  return l;
}

}  // namespace simd

namespace {

// Rows (tokens x heads) of one work item: the scores tile is (96, rows) and the accumulators
// (rows, R); 128 rows keep both, the packed queries and a key tile inside a 1 MiB L2.
constexpr int64_t kMaxRows = 128;
// Split contexts until there are this many work items per thread (dynamic scheduling evens
// out the parts), but never into parts shorter than kMinSplitKeys.
constexpr int64_t kItemsPerThread = 2;
constexpr int64_t kMinSplitKeys = 256;
constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

using ItemFn = void (*)(const simd::LatentItem&);

ItemFn item_function(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAmx:  // no AMX latent kernel: kernel_choice never picks it here
    case SimdLevel::kAvx512Bf16:
      return simd::latent_item_avx512bf16;
    case SimdLevel::kAvx512:
      return simd::latent_item_avx512;
    case SimdLevel::kAvx2:
      return simd::latent_item_avx2;
    case SimdLevel::kScalar:
      break;
  }
  return simd::latent_item_scalar;
}

float* thread_scratch(size_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < floats + simd::kLatentPad) buffer.resize(floats + simd::kLatentPad);
  return std::assume_aligned<64>(
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) & ~uintptr_t{63}));
}

float* aligned(std::vector<float>& v) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
}

void check_layout(const AttentionParams& p, size_t index) {
  if (is_latent_layout(p)) return;
  throw Error("latent_attention: sequence " + std::to_string(index) +
              " is not in the latent layout (one KV head, value = first v_dim entries of the "
              "key row through the same view, F32, BF16, F8_E4M3 or I8 storage)");
}

// Work items: (sequence, block of tokens, group of heads, part of the context).
void plan(std::span<const AttentionParams> seqs, LatentWorkspace& ws, int64_t threads) {
  ws.items.clear();
  int64_t blocks = 0;
  for (const AttentionParams& p : seqs) {
    const int64_t groups = (p.num_heads + kMaxRows - 1) / kMaxRows;
    const int64_t heads = (p.num_heads + groups - 1) / groups;
    const int64_t tokens = std::max<int64_t>(1, kMaxRows / heads);
    blocks += groups * ((p.num_queries + tokens - 1) / tokens);
  }
  int64_t parts = ws.force_split;
  if (parts == 0 && blocks < kItemsPerThread * threads && threads > 1)
    parts = (kItemsPerThread * threads + blocks - 1) / blocks;
  parts = std::max<int64_t>(parts, 1);

  size_t partial_floats = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const AttentionParams& p = seqs[s];
    const int64_t groups = (p.num_heads + kMaxRows - 1) / kMaxRows;
    const int64_t heads = (p.num_heads + groups - 1) / groups;
    const int64_t tokens = std::max<int64_t>(1, kMaxRows / heads);
    for (int64_t t0 = 0; t0 < p.num_queries; t0 += tokens) {
      const int64_t t1 = std::min(t0 + tokens, p.num_queries), keys = p.context_before + t1;
      for (int64_t h0 = 0; h0 < p.num_heads; h0 += heads) {
        const int64_t h1 = std::min(h0 + heads, p.num_heads);
        int64_t n = parts;
        if (ws.force_split == 0) n = std::min(n, std::max<int64_t>(1, keys / kMinSplitKeys));
        // Equal parts, in multiples of kLatentPad keys unless forced (the last part takes what
        // is left). Parts of whole tiles left the last part short and the threads uneven: 4096
        // keys in 4 parts were 3 x 1056 + 928 keys for 96-key tiles, 3 x 1152 + 640 for 192.
        int64_t per = (keys + n - 1) / n;
        if (ws.force_split == 0)
          per = (per + simd::kLatentPad - 1) / simd::kLatentPad * simd::kLatentPad;
        n = (keys + per - 1) / per;
        const simd::LatentScratch l = simd::latent_scratch((t1 - t0) * (h1 - h0), 1, p.v_dim);
        for (int64_t part = 0; part < n; ++part) {
          LatentWorkspace::Item item{static_cast<int64_t>(s),          t0, t1, h0, h1, part * per,
                                     std::min(keys, (part + 1) * per), n,  0,  0.0};
          item.cost = static_cast<double>((t1 - t0) * (h1 - h0)) * (item.k1 - item.k0);
          if (n > 1) {
            item.partial = partial_floats;
            partial_floats += static_cast<size_t>(l.rows_pad * (l.rank_pad + 2));
          }
          ws.items.push_back(item);
        }
      }
    }
  }
  if (ws.partials.size() < partial_floats + simd::kLatentPad)
    ws.partials.resize(partial_floats + simd::kLatentPad);
  ws.order.resize(ws.items.size());
  for (size_t i = 0; i < ws.order.size(); ++i) ws.order[i] = static_cast<int64_t>(i);
  // std::sort, not stable_sort: the latter may allocate.
  std::sort(ws.order.begin(), ws.order.end(), [&ws](int64_t a, int64_t b) {
    const double ca = ws.items[static_cast<size_t>(a)].cost,
                 cb = ws.items[static_cast<size_t>(b)].cost;
    return ca != cb ? ca > cb : a < b;
  });
}

// Output of split rows: parts rescaled to their common maximum (log2 domain) and summed.
void merge_row(const AttentionParams& p, const LatentWorkspace::Item* parts, int64_t n_parts,
               const float* partials, int64_t row) {
  const int64_t rows = (parts[0].t1 - parts[0].t0) * (parts[0].h1 - parts[0].h0);
  const simd::LatentScratch l = simd::latent_scratch(rows, 1, p.v_dim);
  const int64_t acc_size = l.rows_pad * l.rank_pad;
  const int64_t nh = parts[0].h1 - parts[0].h0;
  // Parts starting past the row's last visible key saw nothing of it. Decided by position, not
  // by the part's statistics: a row whose scores were NaN or -inf (a non-finite cache row) can
  // look empty, and its non-finite output must not be dropped.
  const int64_t last_key = p.context_before + parts[0].t0 + row / nh;
  float m = kMinusInf;
  for (int64_t k = 0; k < n_parts; ++k)
    m = std::max(m, partials[parts[k].partial + acc_size + row]);
  float total = 0.0f;
  for (int64_t k = 0; k < n_parts; ++k) {
    const float* base = partials + parts[k].partial;
    if (parts[k].k0 <= last_key)
      total += base[acc_size + l.rows_pad + row] * std::exp2(base[acc_size + row] - m);
  }
  float* out = p.out + (parts[0].t0 + row / nh) * p.out_token_stride +
               (parts[0].h0 + row % nh) * p.out_head_stride;
  std::fill_n(out, p.v_dim, 0.0f);
  for (int64_t k = 0; k < n_parts; ++k) {
    const float* base = partials + parts[k].partial;
    if (parts[k].k0 > last_key) continue;  // no key this row may see
    const float w = std::exp2(base[acc_size + row] - m) / total;
    const float* acc = base + row * l.rank_pad;
    for (int64_t c = 0; c < p.v_dim; ++c) out[c] += w * acc[c];
  }
}

}  // namespace

bool is_latent_layout(const AttentionParams& p) {
  const KvView& k = p.k;
  const KvView& v = p.v;
  return p.num_kv_heads == 1 && p.num_heads >= 1 && p.v_dim >= 1 && p.v_dim <= p.qk_dim &&
         (k.dtype == DType::kF32 || k.dtype == DType::kBF16 || k.dtype == DType::kF8E4M3 ||
          k.dtype == DType::kI8) &&
         v.base == k.base && v.pages == k.pages && v.page_size == k.page_size &&
         v.token_stride == k.token_stride && v.offset == k.offset && v.dtype == k.dtype &&
         p.context_before >= 0 && p.context_before + p.num_queries < (int64_t{1} << 31);
}

void latent_attention(std::span<const AttentionParams> seqs, LatentWorkspace& ws) {
  for (size_t i = 0; i < seqs.size(); ++i) check_layout(seqs[i], i);
  const int threads = omp_get_max_threads();
  plan(seqs, ws, threads);
  if (ws.items.empty()) return;
  // Each cache dtype runs its family's measured choice (ops/kernel_choice.h); a family is
  // measured only once a call needs it.
  ItemFn run[std::size(kKernelFamilies)] = {};  // by family
  for (const AttentionParams& p : seqs) {
    const KernelFamily f = latent_family(p.k.dtype);
    if (run[static_cast<size_t>(f)] == nullptr)
      run[static_cast<size_t>(f)] = item_function(kernel_level(f));
  }
  size_t scratch_floats = 0;
  for (const LatentWorkspace::Item& it : ws.items) {
    const AttentionParams& p = seqs[static_cast<size_t>(it.seq)];
    scratch_floats =
        std::max(scratch_floats,
                 simd::latent_scratch((it.t1 - it.t0) * (it.h1 - it.h0), p.qk_dim, p.v_dim).total);
  }
  float* partials = aligned(ws.partials);
  const auto n_items = static_cast<int64_t>(ws.items.size());

  double work = 0;  // multiply-adds: per row and key, R + Dr for the score and R for P V
  for (const LatentWorkspace::Item& it : ws.items) {
    const AttentionParams& p = seqs[static_cast<size_t>(it.seq)];
    work += it.cost * static_cast<double>(p.qk_dim + p.v_dim);
  }
#pragma omp parallel if (n_items > 1 && worth_parallel(work))
  {
    float* scratch = thread_scratch(scratch_floats);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_items; ++i) {
      const LatentWorkspace::Item& it =
          ws.items[static_cast<size_t>(ws.order[static_cast<size_t>(i)])];
      const AttentionParams& p = seqs[static_cast<size_t>(it.seq)];
      simd::LatentItem item;
      item.q = p.q;
      item.q_token_stride = p.q_token_stride;
      item.q_head_stride = p.q_head_stride;
      item.t0 = it.t0;
      item.t1 = it.t1;
      item.h0 = it.h0;
      item.h1 = it.h1;
      item.width = p.qk_dim;
      item.rank = p.v_dim;
      item.scale = p.scale;
      item.context_before = p.context_before;
      item.kv = p.k;
      item.k0 = it.k0;
      item.k1 = it.k1;
      item.scratch = scratch;
      if (it.parts == 1) {
        item.out = p.out;
        item.out_token_stride = p.out_token_stride;
        item.out_head_stride = p.out_head_stride;
      } else {
        const simd::LatentScratch l =
            simd::latent_scratch((it.t1 - it.t0) * (it.h1 - it.h0), 1, p.v_dim);
        item.acc = partials + it.partial;
        item.row_max = item.acc + l.rows_pad * l.rank_pad;
        item.row_sum = item.row_max + l.rows_pad;
      }
      run[static_cast<size_t>(latent_family(p.k.dtype))](item);
    }
    // Merge the parts of every split block (its items are consecutive, the first part first).
    for (int64_t i = 0; i < n_items;) {
      const LatentWorkspace::Item& first = ws.items[static_cast<size_t>(i)];
      if (first.parts > 1) {
        const AttentionParams& p = seqs[static_cast<size_t>(first.seq)];
        const int64_t rows = (first.t1 - first.t0) * (first.h1 - first.h0);
#pragma omp for schedule(static) nowait
        for (int64_t row = 0; row < rows; ++row) merge_row(p, &first, first.parts, partials, row);
      }
      i += first.parts;
    }
  }
}

void latent_attention(std::span<const AttentionParams> seqs) {
  thread_local LatentWorkspace ws;
  latent_attention(seqs, ws);
}

}  // namespace mla::ops
