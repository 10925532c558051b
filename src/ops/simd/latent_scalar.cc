// Fused latent attention in portable C++ (built with the project's baseline flags): the path
// for CPUs without AVX2 and the yardstick the SIMD paths are tested against. Same tiles, same
// online softmax in the log2 domain, same results within rounding.
#include <cmath>

#include "ops/simd/latent_kernels.h"

namespace mla::ops {
namespace {

#include "ops/simd/latent_common.inc"

}  // namespace

namespace simd {

void latent_item_scalar(const LatentItem& it) {
  const LatentScratch l = latent_scratch(item_rows(it), it.width, it.rank);
  const int64_t rows = item_rows(it);
  float* s = it.scratch + l.scores;  // (rows, kLatentTile) here: one row's scores together
  float* acc = item_acc(it, l);
  float* widened = it.scratch + l.keys;
  const float** keys = reinterpret_cast<const float**>(it.scratch + l.pointers);
  const RowStats st = init_stats(it, l, it.scratch);
  for (int64_t i = 0; i < rows * l.rank_pad; ++i) acc[i] = 0.0f;
  const float scale = it.scale * kLog2e;
  const int64_t last_limit = it.context_before + it.t1 - 1;
  for (int64_t j0 = it.k0; j0 < it.k1 && j0 <= last_limit; j0 += kLatentTile) {
    const int64_t n = min_i(kLatentTile, it.k1 - j0);
    for (int64_t j = 0; j < n; ++j) {
      if (it.kv.dtype == DType::kF32) {
        keys[j] = reinterpret_cast<const float*>(kv_row(it.kv, j0 + j, 4));
        continue;
      }
      if (is_quantized(it.kv.dtype)) {
        float* dst = widened + j * l.width_pad;
        dequantize_tail(reinterpret_cast<const unsigned char*>(kv_row(it.kv, j0 + j, 1)),
                        it.kv.dtype, it.rank, it.width, 0, dst);
        keys[j] = dst;
        continue;
      }
      const uint16_t* src = reinterpret_cast<const uint16_t*>(kv_row(it.kv, j0 + j, 2));
      float* dst = widened + j * l.width_pad;
      for (int64_t w = 0; w < it.width; ++w)
        dst[w] = __builtin_bit_cast(float, static_cast<uint32_t>(src[w]) << 16);
      keys[j] = dst;
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float* q = query_row(it, r);
      float* sr = s + r * kLatentTile;
      const int64_t visible = min_i(n, st.last_key[r] - j0 + 1);
      float tile_max = kMinusInf;
      for (int64_t j = 0; j < visible; ++j) {
        float dot = 0.0f;
        for (int64_t w = 0; w < it.width; ++w) dot += q[w] * keys[j][w];
        sr[j] = dot * scale;
        tile_max = sr[j] > tile_max ? sr[j] : tile_max;
      }
      const float new_max = st.max[r] > tile_max ? st.max[r] : tile_max;
      const float base = new_max == kMinusInf ? 0.0f : new_max;
      const float corr = std::exp2(st.max[r] - base);
      float sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) sum += (sr[j] = std::exp2(sr[j] - base));
      st.max[r] = new_max;
      st.sum[r] = st.sum[r] * corr + sum;
      float* a = acc + r * l.rank_pad;
      for (int64_t c = 0; c < it.rank; ++c) a[c] *= corr;
      for (int64_t j = 0; j < visible; ++j) {
        const float p = sr[j];
        for (int64_t c = 0; c < it.rank; ++c) a[c] += p * keys[j][c];
      }
    }
  }
  if (it.out == nullptr) return;
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = 1.0f / st.sum[r];
    float* o = out_row(it, r);
    for (int64_t c = 0; c < it.rank; ++c) o[c] = acc[r * l.rank_pad + c] * inv;
  }
}

}  // namespace simd
}  // namespace mla::ops
