#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/layer.h"
#include "mla/quantized_row.h"
#include "model/attention_heads.h"
#include "model/layer_workspace.h"
#include "model/mla_projection.h"
#include "model/paged_step.h"
#include "model/rope_params.h"
#include "ops/attention.h"
#include "ops/flash_attention.h"
#include "ops/kernel_choice.h"
#include "ops/latent_attention.h"
#include "ops/linear_bf16.h"
#include "ops/rope.h"

namespace mla {

namespace {

const uint16_t* data_or_null(const std::vector<uint16_t>& v) {
  return v.empty() ? nullptr : v.data();
}

// The chain's view of the layer's weights: the float32 matrices, or their bf16 copies when the
// layer keeps those (the float32 ones are then released and null in the view).
detail::MlaChainWeights<float> chain_weights(const MlaWeightView& w,
                                             const detail::Bf16Projections& b) {
  detail::MlaChainWeights<float> c = detail::chain_weights<float>(w);
  c.q.w_bf16 = data_or_null(b.wq);
  c.q_a.w_bf16 = data_or_null(b.wq_a);
  c.q_b.w_bf16 = data_or_null(b.wq_b);
  c.kv_a.w_bf16 = data_or_null(b.wkv_a);
  c.o.w_bf16 = data_or_null(b.wo);
  return c;
}

}  // namespace

using detail::SeqSlice;
using detail::Workspace;

MlaLayer::MlaLayer(const MlaConfig& config, MlaWeights weights, DType weight_dtype)
    : config_(config),
      weights_(std::move(weights)),
      weight_dtype_(weight_dtype),
      bf16_(std::make_unique<detail::Bf16Projections>()),
      ws_(std::make_unique<Workspace>()) {
  config_.validate();
  weights_.check_shapes(config_);
  if (weight_dtype != DType::kF32 && weight_dtype != DType::kBF16) {
    throw Error("MlaLayer: weight dtype " + std::string(dtype_name(weight_dtype)) +
                " is not supported for computation (use F32 or BF16)");
  }
  // The kernels a step will take are measured now (once per process, ops/kernel_choice.h),
  // not inside the first timed decode step.
  ops::kernel_variant(ops::KernelFamily::kLatentF32);
  ops::kernel_variant(weight_dtype == DType::kBF16 ? ops::KernelFamily::kSkinnyBf16
                                                   : ops::KernelFamily::kSkinnyF32);
  if (weight_dtype == DType::kBF16) {
    for (auto [f32, bf16] : {std::pair{&weights_.wq, &bf16_->wq},
                             {&weights_.wq_a, &bf16_->wq_a},
                             {&weights_.wq_b, &bf16_->wq_b},
                             {&weights_.wkv_a, &bf16_->wkv_a},
                             {&weights_.wo, &bf16_->wo}}) {
      *bf16 = ops::to_bf16(*f32);
      std::vector<float>().swap(*f32);
    }
  }
  view_ = weights_.view(config_);
  init_rope();
}

MlaLayer::MlaLayer(const MlaConfig& config, const MlaWeightView& borrowed)
    : config_(config),
      view_(borrowed),
      borrowed_(true),
      bf16_(std::make_unique<detail::Bf16Projections>()),
      ws_(std::make_unique<Workspace>()) {
  config_.validate();
  view_.for_each_tensor(
      config_, [](const std::string& name, const std::vector<int64_t>&, const float* data) {
        if (data == nullptr) throw Error("weights: " + name + ": not set (the config uses it)");
      });
  ops::kernel_variant(ops::KernelFamily::kLatentF32);
  ops::kernel_variant(ops::KernelFamily::kSkinnyF32);
  init_rope();
}

void MlaLayer::init_rope() {
  const ops::RopeParams rope = rope_params(config_);
  ws_->rope_freqs = ops::rope_frequencies(rope);
  ws_->rope_amplitude = ops::rope_amplitude(rope);
}

MlaLayer::~MlaLayer() = default;
MlaLayer::MlaLayer(MlaLayer&&) noexcept = default;
MlaLayer& MlaLayer::operator=(MlaLayer&&) noexcept = default;

MlaWeights& MlaLayer::mutable_weights() {
  if (borrowed_)
    throw Error("mutable_weights: the layer borrows its weights; write to their owner");
  if (weight_dtype_ != DType::kF32) {
    throw Error(
        "mutable_weights: the layer computes with bf16 copies of its projections; "
        "writes to the float32 weights would not reach them");
  }
  return weights_;
}

int64_t MlaLayer::paged_token_width(AttentionPath path) const {
  const MlaConfig& c = config_;
  return path == AttentionPath::kAbsorbed ? c.latent_dim()
                                          : c.num_heads * (c.qk_head_dim() + c.v_head_dim);
}

void MlaLayer::check_io(std::span<const float> x, int64_t batch, int64_t seq, std::span<float> y,
                        int64_t cache_batch) const {
  if (batch < 1) throw Error("forward: batch must be at least 1, got " + std::to_string(batch));
  if (seq < 1)
    throw Error("forward: sequence length must be at least 1, got " + std::to_string(seq));
  if (batch != cache_batch) {
    throw Error("forward: batch " + std::to_string(batch) + " does not match the cache's batch " +
                std::to_string(cache_batch));
  }
  const int64_t d = config_.hidden_size, d_out = config_.out_size();
  if (seq > (int64_t{1} << 40) / (batch * std::max(d, d_out)))
    throw Error("forward: batch x seq x hidden is too large");
  const auto expected = static_cast<size_t>(batch * seq * d);
  if (x.size() != expected) {
    throw Error("forward: x has " + std::to_string(x.size()) +
                " values, expected batch x seq x hidden = " + std::to_string(expected));
  }
  const auto expected_y = static_cast<size_t>(batch * seq * d_out);
  if (y.size() != expected_y) {
    throw Error("forward: y has " + std::to_string(y.size()) +
                " values, expected batch x seq x output_size = " + std::to_string(expected_y));
  }
}

void MlaLayer::project_inputs(const float* x, int64_t n) {
  const MlaConfig& c = config_;
  Workspace& ws = *ws_;
  const int64_t h = c.num_heads, dr = c.qk_rope_head_dim;
  Workspace::reserve(ws.q, n * h * c.qk_head_dim());
  Workspace::reserve(ws.q_latent, n * c.q_lora_rank);
  Workspace::reserve(ws.latent, n * c.latent_dim());
  Workspace::reserve(ws.cos_sin, n * dr);  // one rotary row per new token, at its position
  if (dr > 0) {
    for (int64_t row = 0; row < n; ++row) {
      ops::rope_cos_sin(ws.rope_freqs, ws.rope_amplitude, ws.positions[static_cast<size_t>(row)],
                        ws.cos_sin.data() + row * dr);
    }
  }
  detail::MlaProjected<float> out;
  out.q = ws.q.data();
  out.latent = ws.latent.data();
  out.q_latent = ws.q_latent.data();
  detail::project_inputs(c, chain_weights(view_, *bf16_), x, n, ws.cos_sin.data(), n, out);
}

void MlaLayer::absorb_queries(int64_t n) {
  Workspace& ws = *ws_;
  Workspace::reserve(ws.q_absorbed, n * config_.num_heads * config_.latent_dim());
  detail::absorb_queries(config_, view_.wkv_b, ws.q.data(), n, ws.q_absorbed.data());
}

void MlaLayer::expand_kv(int64_t n) {
  const MlaConfig& c = config_;
  Workspace& ws = *ws_;
  // Materialise per-head keys and values: kv (N, H, Dn+Dv) = c_kv (N, R) * W_UKV^T.
  Workspace::reserve(ws.kv, n * c.num_heads * (c.qk_nope_head_dim + c.v_head_dim));
  detail::expand_kv(c, view_.wkv_b, view_.bkv_b, ws.latent.data(), n, ws.kv.data());
}

void MlaLayer::write_naive_rows(int64_t row, float* keys, float* values) const {
  const MlaConfig& c = config_;
  detail::naive_keys(c, ws_->kv.data() + row * c.num_heads * (c.qk_nope_head_dim + c.v_head_dim),
                     ws_->latent.data() + row * c.latent_dim(), keys, values);
}

void MlaLayer::attend(std::span<const SeqSlice> slices, AttentionPath path) {
  const MlaConfig& c = config_;
  Workspace& ws = *ws_;
  const bool absorbed = path == AttentionPath::kAbsorbed;
  const ops::AttentionHeads heads = mla_attention_heads(c, absorbed);
  int64_t n = 0;
  for (const SeqSlice& s : slices) n = std::max(n, s.row0 + s.rows);
  Workspace::reserve(absorbed ? ws.o_latent : ws.o, n * heads.out_token_stride);
  float* out = absorbed ? ws.o_latent.data() : ws.o.data();
  const float* q = absorbed ? ws.q_absorbed.data() : ws.q.data();
  ws.attention_params.clear();
  for (const SeqSlice& s : slices) {
    ops::AttentionParams p;
    static_cast<ops::AttentionHeads&>(p) = heads;
    p.q = q + s.row0 * heads.q_token_stride;
    p.k = s.k;
    p.v = s.v;  // absorbed: the same latent rows, whose first R entries are the value
    p.out = out + s.row0 * heads.out_token_stride;
    p.num_queries = s.rows;
    p.context_before = s.cached;
    p.scale = static_cast<float>(c.softmax_scale());
    ws.attention_params.push_back(p);
  }
  // One call for the whole batch, so the kernel can balance sequences across threads. The
  // absorbed layout (paged or not) takes the fused latent kernel (SIMD chosen at run time), as
  // the contiguous cache does.
  run_attention(slices, absorbed);
}

void MlaLayer::project_output(int64_t n, AttentionPath path, float* y) {
  const MlaConfig& c = config_;
  Workspace& ws = *ws_;
  const int64_t h = c.num_heads, dv = c.v_head_dim;
  if (path == AttentionPath::kAbsorbed) {
    Workspace::reserve(ws.o, n * h * dv);
    detail::absorbed_values(c, view_.wkv_b, view_.bkv_b, ws.o_latent.data(), n, ws.o.data());
  }
  detail::project(chain_weights(view_, *bf16_).o, ws.o.data(), n, h * dv, c.out_size(), y);
}

void MlaLayer::set_uniform_positions(int64_t batch, int64_t seq, int64_t first_position) {
  Workspace& ws = *ws_;
  ws.positions.resize(static_cast<size_t>(batch * seq));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t s = 0; s < seq; ++s)
      ws.positions[static_cast<size_t>(b * seq + s)] = first_position + s;
  }
}

void MlaLayer::forward(std::span<const float> x, int64_t batch, int64_t seq, LatentCache& cache,
                       std::span<float> y) {
  check_io(x, batch, seq, y, cache.batch());
  if (cache.row_width() != config_.latent_dim() || cache.kv_lora_rank() != config_.kv_lora_rank) {
    throw Error("forward: the latent cache was made for another config (row width " +
                std::to_string(cache.row_width()) + ", expected " +
                std::to_string(config_.latent_dim()) + ")");
  }
  cache.check_room(seq);
  if (sparse_.kind == SparseKind::kDsa) throw Error(detail::kDsaNeedsPool);
  Workspace& ws = *ws_;
  const int64_t n = batch * seq, row = config_.latent_dim(), cached = cache.length();
  set_uniform_positions(batch, seq, cache.start_position() + cached);
  project_inputs(x.data(), n);
  absorb_queries(n);
  ws.slices.clear();
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(cache.rows(b) + cached * row, ws.latent.data() + b * seq * row,
                sizeof(float) * seq * row);
    const ops::KvView view = ops::KvView::contiguous(cache.rows(b), row);
    ws.slices.push_back(SeqSlice{b * seq, seq, cached, view, view});
  }
  attend(ws.slices, AttentionPath::kAbsorbed);
  cache.commit(seq);
  project_output(n, AttentionPath::kAbsorbed, y.data());
}

void MlaLayer::forward(std::span<const float> x, int64_t batch, int64_t seq, NaiveKvCache& cache,
                       std::span<float> y) {
  check_io(x, batch, seq, y, cache.batch());
  const MlaConfig& c = config_;
  const int64_t h = c.num_heads, dv = c.v_head_dim, dqk = c.qk_head_dim();
  if (cache.key_width() != h * dqk || cache.value_width() != h * dv) {
    throw Error("forward: the K/V cache was made for another config");
  }
  cache.check_room(seq);
  if (sparse_.kind == SparseKind::kDsa) throw Error(detail::kDsaNeedsPool);
  Workspace& ws = *ws_;
  const int64_t n = batch * seq, cached = cache.length();
  set_uniform_positions(batch, seq, cache.start_position() + cached);
  project_inputs(x.data(), n);
  expand_kv(n);
  ws.slices.clear();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t s = 0; s < seq; ++s) {
      write_naive_rows(b * seq + s, cache.keys(b) + (cached + s) * h * dqk,
                       cache.values(b) + (cached + s) * h * dv);
    }
    ws.slices.push_back(SeqSlice{b * seq, seq, cached,
                                 ops::KvView::contiguous(cache.keys(b), h * dqk),
                                 ops::KvView::contiguous(cache.values(b), h * dv)});
  }
  attend(ws.slices, AttentionPath::kNaive);
  cache.commit(seq);
  project_output(n, AttentionPath::kNaive, y.data());
}

void MlaLayer::forward(std::span<const float> x, std::span<const PagedKvPool::SeqId> seqs,
                       std::span<const int64_t> new_tokens, PagedKvPool& pool, AttentionPath path,
                       std::span<float> y) {
  forward_paged(x, seqs, new_tokens, pool, path, y, nullptr);
}

void MlaLayer::forward(std::span<const float> x, std::span<const PagedKvPool::SeqId> seqs,
                       std::span<const int64_t> new_tokens, PagedKvPool& pool, AttentionPath path,
                       std::span<float> y, PagedKvPool& index_pool) {
  forward_paged(x, seqs, new_tokens, pool, path, y, &index_pool);
}

void MlaLayer::forward_paged(std::span<const float> x, std::span<const PagedKvPool::SeqId> seqs,
                             std::span<const int64_t> new_tokens, PagedKvPool& pool,
                             AttentionPath path, std::span<float> y, PagedKvPool* index_pool) {
  const MlaConfig& c = config_;
  const int64_t n = detail::check_paged_step(x, y, seqs, new_tokens, c.hidden_size, c.out_size());
  if (pool.token_width() != paged_token_width(path)) {
    throw Error("forward: the page pool holds rows of " + std::to_string(pool.token_width()) +
                " numbers, the " + (path == AttentionPath::kAbsorbed ? "absorbed" : "naive") +
                " path needs " + std::to_string(paged_token_width(path)));
  }
  const bool quantized = is_quantized_cache_dtype(pool.dtype());
  if (quantized && (path != AttentionPath::kAbsorbed || sparse_.is_sparse() ||
                    pool.rope_width() != c.qk_rope_head_dim)) {
    // Only the fused latent kernel reads the quantized rows (mla/quantized_row.h).
    throw Error("forward: an " + std::string(dtype_name(pool.dtype())) +
                " page pool serves the dense absorbed path only, with the rope part (" +
                std::to_string(c.qk_rope_head_dim) + " numbers, pool has " +
                std::to_string(pool.rope_width()) + ") kept in bf16");
  }
  const bool dsa = sparse_.kind == SparseKind::kDsa;
  if (dsa) check_index_pool(seqs, pool, index_pool);
  // All or nothing: both reservations throw before anything is written.
  if (dsa) index_pool->reserve(seqs, new_tokens);
  pool.reserve(seqs, new_tokens);

  Workspace& ws = *ws_;
  ws.positions.resize(static_cast<size_t>(n));
  for (size_t i = 0, row = 0; i < seqs.size(); ++i) {
    const int64_t cached = pool.length(seqs[i]);
    for (int64_t t = 0; t < new_tokens[i]; ++t) ws.positions[row++] = cached + t;
  }
  project_inputs(x.data(), n);
  if (dsa) select_with_indexer(x.data(), seqs, new_tokens, pool, *index_pool);
  const bool absorbed = path == AttentionPath::kAbsorbed;
  if (absorbed) {
    absorb_queries(n);
  } else {
    expand_kv(n);
  }
  const int64_t width = pool.token_width(), key_width = c.num_heads * c.qk_head_dim();
  ws.slices.clear();
  for (size_t i = 0, row0 = 0; i < seqs.size(); ++i) {
    const int64_t cached = pool.length(seqs[i]);
    for (int64_t t = 0; t < new_tokens[i]; ++t) {
      void* dst = pool.writable_row(seqs[i], cached + t);
      const int64_t row = static_cast<int64_t>(row0) + t;
      const float* src = ws.latent.data() + row * width;
      if (!absorbed) {
        Workspace::reserve(ws.row_buffer, width);
        write_naive_rows(row, ws.row_buffer.data(), ws.row_buffer.data() + key_width);
        src = ws.row_buffer.data();
      }
      pool.encode_row(src, dst);
    }
    const void* const* table = pool.page_table(seqs[i]);
    // Quantized rows are addressed in bytes (their element size is 1).
    const int64_t stride = quantized ? pool.row_bytes() : width;
    const ops::KvView k = ops::KvView::paged(table, pool.page_size(), stride, 0, pool.dtype());
    const ops::KvView v =
        absorbed ? k : ops::KvView::paged(table, pool.page_size(), width, key_width, pool.dtype());
    ws.slices.push_back(SeqSlice{static_cast<int64_t>(row0), new_tokens[i], cached, k, v});
    row0 += static_cast<size_t>(new_tokens[i]);
  }
  attend(ws.slices, path);
  for (size_t i = 0; i < seqs.size(); ++i) {
    pool.commit(seqs[i], new_tokens[i]);
    if (dsa) index_pool->commit(seqs[i], new_tokens[i]);
  }
  project_output(n, path, y.data());
}

void MlaLayer::prefill(std::span<const float> x, int64_t batch, int64_t seq, std::span<float> y,
                       AttentionPath path, int64_t start_position) {
  check_io(x, batch, seq, y, batch);
  if (sparse_.kind == SparseKind::kDsa) {
    // DSA keeps the indexer's keys in their own pool; (batch, seq, d) is already the packed
    // layout of `batch` sequences with `seq` new tokens each.
    if (start_position != 0) throw Error("prefill: DSA starts at position 0");
    if (!indexer_) throw Error("forward: DSA needs an indexer (MlaLayer::set_indexer)");
    const int64_t page = 64, pages = batch * ((seq + page - 1) / page);
    PagedKvPool pool(paged_token_width(path), page, pages);
    PagedKvPool index_pool(indexer_->key_width(), page, pages);
    std::vector<PagedKvPool::SeqId> ids;
    for (int64_t b = 0; b < batch; ++b) {
      ids.push_back(pool.add_sequence());
      index_pool.add_sequence();
    }
    const std::vector<int64_t> counts(static_cast<size_t>(batch), seq);
    forward(x, ids, counts, pool, path, y, index_pool);
    return;
  }
  if (path == AttentionPath::kAbsorbed) {
    LatentCache cache(config_, batch, seq, start_position);
    forward(x, batch, seq, cache, y);
  } else {
    NaiveKvCache cache(config_, batch, seq, start_position);
    forward(x, batch, seq, cache, y);
  }
}

}  // namespace mla
