// Scratch buffers of an MlaLayer, sized for the largest call so far and then reused, so that a
// decode step allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/cache_line_vector.h"
#include "ops/flash_attention.h"
#include "ops/kv_view.h"
#include "ops/sparse_attention.h"

namespace mla::detail {

// The error of a DSA layer asked to run without the indexer's key pool.
extern const char* const kDsaNeedsPool;

// The new tokens of one sequence within a call: workspace rows [row0, row0 + rows), attending to
// `cached` earlier tokens plus themselves, read through the views.
struct SeqSlice {
  int64_t row0 = 0;
  int64_t rows = 0;
  int64_t cached = 0;
  ops::KvView k;
  ops::KvView v;
};

// bf16 copies of the projection matrices when the layer stores its weights in bf16; empty
// vectors otherwise.
struct Bf16Projections {
  std::vector<uint16_t> wq, wq_a, wq_b, wkv_a, wo;
};

// Rows start on cache lines: the skinny kernels copy a row that does not (ops/skinny.cc).
struct Workspace {
  std::vector<float> rope_freqs;  // (Dr/2)
  float rope_amplitude = 1.0f;
  ops::CacheLineVector<float> cos_sin;     // (N, Dr) cos/sin rows of positions
  std::vector<int64_t> positions;          // (N) rotary position of each new token
  ops::CacheLineVector<float> q_latent;    // (N, Rq)
  ops::CacheLineVector<float> q;           // (N, H, Dn+Dr)
  ops::CacheLineVector<float> latent;      // (N, R+Dr): normed c_kv then roped k_pe
  ops::CacheLineVector<float> q_absorbed;  // (N, H, R+Dr)  absorbed path
  ops::CacheLineVector<float> o_latent;    // (N, H, R)     absorbed path
  ops::CacheLineVector<float> kv;          // (N, H, Dn+Dv) naive path
  ops::CacheLineVector<float> o;           // (N, H, Dv)
  ops::CacheLineVector<float> row_buffer;  // one cache row before conversion to the pool's dtype
  std::vector<SeqSlice> slices;            // one per sequence of the call
  std::vector<ops::AttentionParams> attention_params;  // one per sequence of the call
  ops::FlashWorkspace flash_workspace;
  // Sparse attention: the key lists of every new token, slice by slice (capacity each), their
  // counts, and the dense-head and sparse-head halves of attention_params.
  std::vector<int32_t> key_lists, key_counts;
  int64_t key_capacity = 0;
  bool indexer_lists = false;  // key_lists hold this call's DSA selection
  std::vector<ops::AttentionParams> dense_params;
  std::vector<ops::SparseAttentionParams> sparse_params;

  template <class Vector>
  static void reserve(Vector& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  }
};

}  // namespace mla::detail
