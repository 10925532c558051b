#include "mla/layer.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "mla/error.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/norm.h"
#include "ops/rope.h"

namespace mla {

// Buffers sized for the largest call so far; `reserve` grows them and never shrinks.
struct MlaLayer::Workspace {
  std::vector<float> rope_freqs;  // (Dr/2)
  float rope_amplitude = 1.0f;
  std::vector<float> cos_sin;  // (Dr)
  std::vector<float> q_latent;  // (N, Rq)
  std::vector<float> q;         // (N, H, Dn+Dr)
  std::vector<float> latent;    // (N, R+Dr): normed c_kv then roped k_pe
  std::vector<float> q_absorbed;  // (N, H, R+Dr)  absorbed path
  std::vector<float> o_latent;    // (N, H, R)     absorbed path
  std::vector<float> kv;          // (N, H, Dn+Dv) naive path
  std::vector<float> o;           // (N, H, Dv)

  static void reserve(std::vector<float>& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  }
};

MlaLayer::MlaLayer(const MlaConfig& config, MlaWeights weights)
    : config_(config), weights_(std::move(weights)), ws_(std::make_unique<Workspace>()) {
  config_.validate();
  weights_.check_shapes(config_);
  ws_->rope_freqs = ops::rope_frequencies(config_);
  ws_->rope_amplitude = ops::rope_amplitude(config_);
  ws_->cos_sin.resize(static_cast<size_t>(config_.qk_rope_head_dim));
}

MlaLayer::~MlaLayer() = default;
MlaLayer::MlaLayer(MlaLayer&&) noexcept = default;
MlaLayer& MlaLayer::operator=(MlaLayer&&) noexcept = default;

void MlaLayer::check_io(std::span<const float> x, int64_t batch, int64_t seq, std::span<float> y,
                        int64_t cache_batch) const {
  if (batch < 1) throw Error("forward: batch must be at least 1, got " + std::to_string(batch));
  if (seq < 1) throw Error("forward: sequence length must be at least 1, got " + std::to_string(seq));
  if (batch != cache_batch) {
    throw Error("forward: batch " + std::to_string(batch) + " does not match the cache's batch " +
                std::to_string(cache_batch));
  }
  const int64_t d = config_.hidden_size;
  if (seq > (int64_t{1} << 40) / (batch * d)) throw Error("forward: batch x seq x hidden is too large");
  const auto expected = static_cast<size_t>(batch * seq * d);
  if (x.size() != expected) {
    throw Error("forward: x has " + std::to_string(x.size()) + " values, expected batch x seq x hidden = " +
                std::to_string(expected));
  }
  if (y.size() != expected) {
    throw Error("forward: y has " + std::to_string(y.size()) + " values, expected batch x seq x hidden = " +
                std::to_string(expected));
  }
}

void MlaLayer::project_inputs(const float* x, int64_t batch, int64_t seq, int64_t first_position) {
  const MlaConfig& c = config_;
  Workspace& ws = *ws_;
  const int64_t n = batch * seq;
  const int64_t d = c.hidden_size, h = c.num_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
  const int64_t r = c.kv_lora_rank, dqk = c.qk_head_dim();
  const float eps = static_cast<float>(c.rms_norm_eps);

  Workspace::reserve(ws.q, n * h * dqk);
  if (c.has_q_lora()) {
    Workspace::reserve(ws.q_latent, n * c.q_lora_rank);
    ops::linear(x, n, d, weights_.wq_a.data(), c.q_lora_rank, ws.q_latent.data());
    ops::rms_norm_rows(ws.q_latent.data(), n, c.q_lora_rank, c.q_lora_rank, weights_.q_norm.data(), eps);
    ops::linear(ws.q_latent.data(), n, c.q_lora_rank, weights_.wq_b.data(), h * dqk, ws.q.data());
  } else {
    ops::linear(x, n, d, weights_.wq.data(), h * dqk, ws.q.data());
  }

  Workspace::reserve(ws.latent, n * (r + dr));
  ops::linear(x, n, d, weights_.wkv_a.data(), r + dr, ws.latent.data());
  ops::rms_norm_rows(ws.latent.data(), n, r, r + dr, weights_.kv_norm.data(), eps);

  if (dr == 0) return;
  for (int64_t s = 0; s < seq; ++s) {
    ops::rope_cos_sin(ws.rope_freqs, ws.rope_amplitude, first_position + s, ws.cos_sin.data());
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t row = b * seq + s;
      ops::rope_apply(ws.q.data() + row * h * dqk + dn, h, dqk, dr, ws.cos_sin.data());
      ops::rope_apply(ws.latent.data() + row * (r + dr) + r, 1, r + dr, dr, ws.cos_sin.data());
    }
  }
}

void MlaLayer::forward(std::span<const float> x, int64_t batch, int64_t seq, LatentCache& cache,
                       std::span<float> y) {
  check_io(x, batch, seq, y, cache.batch());
  if (cache.row_width() != config_.latent_dim() || cache.kv_lora_rank() != config_.kv_lora_rank) {
    throw Error("forward: the latent cache was made for another config (row width " +
                std::to_string(cache.row_width()) + ", expected " + std::to_string(config_.latent_dim()) + ")");
  }
  cache.check_room(seq);
  const MlaConfig& c = config_;
  Workspace& ws = *ws_;
  const int64_t n = batch * seq;
  const int64_t h = c.num_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t r = c.kv_lora_rank, dqk = c.qk_head_dim(), row = r + dr;
  const int64_t cached = cache.length();

  project_inputs(x.data(), batch, seq, cache.start_position() + cached);

  // Fold W_UK into the query: q~_h (N, R) = q_nope_h (N, Dn) * W_UK_h (Dn, R).
  Workspace::reserve(ws.q_absorbed, n * h * row);
  for (int64_t head = 0; head < h; ++head) {
    ops::gemm(false, false, n, r, dn, 1.0f, ws.q.data() + head * dqk, h * dqk,
              weights_.wkv_b.data() + head * (dn + dv) * r, r, 0.0f, ws.q_absorbed.data() + head * row,
              h * row);
  }
  for (int64_t i = 0; i < n * h; ++i) {
    std::memcpy(ws.q_absorbed.data() + i * row + r, ws.q.data() + i * dqk + dn, sizeof(float) * dr);
  }

  // Append the new latent rows, then attend: multi-query attention over rows of width R + Dr
  // whose first R entries are also the value.
  Workspace::reserve(ws.o_latent, n * h * r);
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(cache.rows(b) + cached * row, ws.latent.data() + b * seq * row, sizeof(float) * seq * row);
    ops::AttentionParams p;
    p.q = ws.q_absorbed.data() + b * seq * h * row;
    p.q_token_stride = h * row;
    p.q_head_stride = row;
    p.k = ops::KvView::contiguous(cache.rows(b), row);
    p.v = p.k;
    p.out = ws.o_latent.data() + b * seq * h * r;
    p.out_token_stride = h * r;
    p.out_head_stride = r;
    p.num_queries = seq;
    p.num_heads = h;
    p.num_kv_heads = 1;
    p.qk_dim = row;
    p.v_dim = r;
    p.context_before = cached;
    p.scale = static_cast<float>(c.softmax_scale());
    ops::attention_forward(p);
  }
  cache.commit(seq);

  // o_h (N, Dv) = o~_h (N, R) * W_UV_h^T, W_UV_h is (Dv, R).
  Workspace::reserve(ws.o, n * h * dv);
  for (int64_t head = 0; head < h; ++head) {
    ops::gemm(false, true, n, dv, r, 1.0f, ws.o_latent.data() + head * r, h * r,
              weights_.wkv_b.data() + (head * (dn + dv) + dn) * r, r, 0.0f, ws.o.data() + head * dv, h * dv);
  }
  ops::linear(ws.o.data(), n, h * dv, weights_.wo.data(), c.hidden_size, y.data());
}

void MlaLayer::forward(std::span<const float> x, int64_t batch, int64_t seq, NaiveKVCache& cache,
                       std::span<float> y) {
  check_io(x, batch, seq, y, cache.batch());
  const MlaConfig& c = config_;
  const int64_t h = c.num_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t r = c.kv_lora_rank, dqk = c.qk_head_dim(), row = r + dr;
  if (cache.key_width() != h * dqk || cache.value_width() != h * dv) {
    throw Error("forward: the K/V cache was made for another config");
  }
  cache.check_room(seq);
  Workspace& ws = *ws_;
  const int64_t n = batch * seq;
  const int64_t cached = cache.length();

  project_inputs(x.data(), batch, seq, cache.start_position() + cached);

  // Materialise per-head keys and values: kv (N, H, Dn+Dv) = c_kv (N, R) * W_UKV^T.
  Workspace::reserve(ws.kv, n * h * (dn + dv));
  ops::gemm(false, true, n, h * (dn + dv), r, 1.0f, ws.latent.data(), row, weights_.wkv_b.data(), r, 0.0f,
            ws.kv.data(), h * (dn + dv));

  Workspace::reserve(ws.o, n * h * dv);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t s = 0; s < seq; ++s) {
      const int64_t src = b * seq + s;
      float* k_dst = cache.keys(b) + (cached + s) * h * dqk;
      float* v_dst = cache.values(b) + (cached + s) * h * dv;
      for (int64_t head = 0; head < h; ++head) {
        const float* kv_src = ws.kv.data() + (src * h + head) * (dn + dv);
        std::memcpy(k_dst + head * dqk, kv_src, sizeof(float) * dn);
        std::memcpy(k_dst + head * dqk + dn, ws.latent.data() + src * row + r, sizeof(float) * dr);
        std::memcpy(v_dst + head * dv, kv_src + dn, sizeof(float) * dv);
      }
    }
    ops::AttentionParams p;
    p.q = ws.q.data() + b * seq * h * dqk;
    p.q_token_stride = h * dqk;
    p.q_head_stride = dqk;
    p.k = ops::KvView::contiguous(cache.keys(b), h * dqk);
    p.k_head_stride = dqk;
    p.v = ops::KvView::contiguous(cache.values(b), h * dv);
    p.v_head_stride = dv;
    p.out = ws.o.data() + b * seq * h * dv;
    p.out_token_stride = h * dv;
    p.out_head_stride = dv;
    p.num_queries = seq;
    p.num_heads = h;
    p.num_kv_heads = h;
    p.qk_dim = dqk;
    p.v_dim = dv;
    p.context_before = cached;
    p.scale = static_cast<float>(c.softmax_scale());
    ops::attention_forward(p);
  }
  cache.commit(seq);
  ops::linear(ws.o.data(), n, h * dv, weights_.wo.data(), c.hidden_size, y.data());
}

void MlaLayer::prefill(std::span<const float> x, int64_t batch, int64_t seq, std::span<float> y,
                       AttentionPath path, int64_t start_position) {
  check_io(x, batch, seq, y, batch);
  if (path == AttentionPath::kAbsorbed) {
    LatentCache cache(config_, batch, seq, start_position);
    forward(x, batch, seq, cache, y);
  } else {
    NaiveKVCache cache(config_, batch, seq, start_position);
    forward(x, batch, seq, cache, y);
  }
}

}  // namespace mla
