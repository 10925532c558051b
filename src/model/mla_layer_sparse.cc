// The sparse half of MlaLayer: key lists per new token from the layer's SparseSpec, and the
// split of one attention call into dense heads (the ordinary kernels) and sparse heads
// (ops::sparse_attention). docs/sparse.md has the patterns.
#include <algorithm>
#include <string>

#include "mla/error.h"
#include "mla/layer.h"
#include "model/layer_workspace.h"
#include "ops/flash_attention.h"
#include "ops/latent_attention.h"
#include "ops/sparse_select.h"

namespace mla {

using detail::SeqSlice;
using detail::Workspace;

const char* const detail::kDsaNeedsPool =
    "forward: DSA needs the lightning indexer's key pool: use the paged forward that takes one";

void MlaLayer::set_sparse(const SparseSpec& spec) {
  spec.validate(config_.num_heads);
  sparse_ = spec;
}

void MlaLayer::build_key_lists(std::span<const SeqSlice> slices) {
  Workspace& ws = *ws_;
  int64_t most_keys = 0, tokens = 0;
  for (const SeqSlice& s : slices) {
    most_keys = std::max(most_keys, s.cached + s.rows);
    tokens += s.rows;
  }
  const SparseSpec& sp = sparse_;
  const int64_t pattern = sp.kind == SparseKind::kWindow
                              ? sp.window
                              : (sp.local_blocks + sp.global_blocks) * sp.block_size;
  ws.key_capacity = std::max<int64_t>(1, std::min(pattern, most_keys));
  const auto total = static_cast<size_t>(tokens * ws.key_capacity);
  if (ws.key_lists.size() < total) ws.key_lists.resize(total);
  if (ws.key_counts.size() < static_cast<size_t>(tokens))
    ws.key_counts.resize(static_cast<size_t>(tokens));
  for (const SeqSlice& s : slices) {
    for (int64_t t = 0; t < s.rows; ++t) {
      const int64_t row = s.row0 + t, query = s.cached + t;
      int32_t* out = ws.key_lists.data() + row * ws.key_capacity;
      const int64_t n =
          sp.kind == SparseKind::kWindow
              ? ops::select_window(query, sp.window, out)
              : ops::select_blocks(query, sp.block_size, sp.local_blocks, sp.global_blocks, out);
      ws.key_counts[static_cast<size_t>(row)] = static_cast<int32_t>(n);
    }
  }
}

void MlaLayer::run_attention(std::span<const SeqSlice> slices, bool latent_kernel) {
  Workspace& ws = *ws_;
  const auto dense = [&ws, latent_kernel](std::span<const ops::AttentionParams> params) {
    if (latent_kernel) {
      ops::latent_attention(params);
    } else {
      ops::flash_attention(params, ws.flash_workspace);
    }
  };
  const SparseSpec& sp = sparse_;
  const int64_t h = config_.num_heads, dense_heads = sp.is_sparse() ? sp.dense_heads : h;
  if (dense_heads == h) {
    dense(ws.attention_params);
    return;
  }
  if (dense_heads > 0) {
    ws.dense_params = ws.attention_params;
    for (ops::AttentionParams& p : ws.dense_params) {
      if (p.num_kv_heads == p.num_heads) p.num_kv_heads = dense_heads;  // naive: one per head
      p.num_heads = dense_heads;
    }
    dense(ws.dense_params);
  }
  if (sp.kind == SparseKind::kWindow || sp.kind == SparseKind::kBlock) build_key_lists(slices);
  if (sp.kind == SparseKind::kDsa && !ws.indexer_lists) throw Error(detail::kDsaNeedsPool);
  ws.indexer_lists = false;  // used once
  ws.sparse_params.clear();
  for (size_t i = 0; i < slices.size(); ++i) {
    ops::SparseAttentionParams s;
    ops::AttentionParams& p = s.attn;
    p = ws.attention_params[i];
    // The sparse heads are dense_heads .. H - 1: move queries, outputs and (naive) K/V there.
    p.q += dense_heads * p.q_head_stride;
    p.out += dense_heads * p.out_head_stride;
    if (p.num_kv_heads == p.num_heads) {
      p.k.offset += dense_heads * p.k_head_stride;
      p.v.offset += dense_heads * p.v_head_stride;
      p.num_kv_heads = h - dense_heads;
    }
    p.num_heads = h - dense_heads;
    if (sp.kind == SparseKind::kTopK) {
      s.top_k = sp.top_k;
    } else {
      const int64_t row0 = slices[i].row0;
      s.lists = {ws.key_lists.data() + row0 * ws.key_capacity, ws.key_counts.data() + row0,
                 ws.key_capacity, false};
    }
    ws.sparse_params.push_back(s);
  }
  ops::sparse_attention(ws.sparse_params);
}

}  // namespace mla

namespace mla {

void MlaLayer::set_indexer(DsaIndexer indexer) {
  // The indexer reads this layer's x and query latent: their widths and the rotary width must
  // be the ones it was built for.
  const MlaConfig& m = indexer.model_config();
  if (m.hidden_size != config_.hidden_size || m.q_lora_rank != config_.q_lora_rank ||
      m.qk_rope_head_dim != config_.qk_rope_head_dim) {
    throw Error("set_indexer: the indexer was made for another config (hidden " +
                std::to_string(m.hidden_size) + ", q_lora_rank " + std::to_string(m.q_lora_rank) +
                ", rope " + std::to_string(m.qk_rope_head_dim) + "; the layer has " +
                std::to_string(config_.hidden_size) + ", " + std::to_string(config_.q_lora_rank) +
                ", " + std::to_string(config_.qk_rope_head_dim) + ")");
  }
  indexer_ = std::make_unique<DsaIndexer>(std::move(indexer));
}

void MlaLayer::check_index_pool(std::span<const PagedKvPool::SeqId> seqs, const PagedKvPool& pool,
                                const PagedKvPool* index_pool) const {
  if (index_pool == nullptr) throw Error(detail::kDsaNeedsPool);
  if (!indexer_) throw Error("forward: DSA needs an indexer (MlaLayer::set_indexer)");
  if (index_pool->token_width() != indexer_->key_width()) {
    throw Error("forward: the index pool holds rows of " +
                std::to_string(index_pool->token_width()) + " numbers, the indexer needs " +
                std::to_string(indexer_->key_width()));
  }
  for (PagedKvPool::SeqId id : seqs) {
    if (!index_pool->contains(id)) {
      throw Error("forward: sequence " + std::to_string(id) + " is not in the index pool");
    }
    if (pool.contains(id) && index_pool->length(id) != pool.length(id)) {
      throw Error("forward: sequence " + std::to_string(id) + " holds " +
                  std::to_string(index_pool->length(id)) + " tokens in the index pool and " +
                  std::to_string(pool.length(id)) + " in the cache");
    }
  }
}

void MlaLayer::select_with_indexer(const float* x, std::span<const PagedKvPool::SeqId> seqs,
                                   std::span<const int64_t> new_tokens, const PagedKvPool& pool,
                                   PagedKvPool& index_pool) {
  Workspace& ws = *ws_;
  int64_t longest = 0, tokens = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    longest = std::max(longest, pool.length(seqs[i]) + new_tokens[i]);
    tokens += new_tokens[i];
  }
  ws.key_capacity = std::max<int64_t>(1, std::min(sparse_.top_k, longest));
  const auto total = static_cast<size_t>(tokens * ws.key_capacity);
  if (ws.key_lists.size() < total) ws.key_lists.resize(total);
  if (ws.key_counts.size() < static_cast<size_t>(tokens))
    ws.key_counts.resize(static_cast<size_t>(tokens));
  // The indexer reads the query latent c_q (after q_a_layernorm), or x without compression.
  const float* c_q = config_.has_q_lora() ? ws.q_latent.data() : x;
  indexer_->select(x, c_q, seqs, new_tokens, index_pool, sparse_.top_k, ws.key_capacity,
                   ws.key_lists.data(), ws.key_counts.data());
  ws.indexer_lists = true;
}

}  // namespace mla
