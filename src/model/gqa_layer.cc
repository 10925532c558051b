#include "mla/gqa_layer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "mla/error.h"
#include "model/attention_heads.h"
#include "model/paged_step.h"
#include "model/rope_params.h"
#include "ops/flash_attention.h"
#include "ops/gemm.h"
#include "ops/rope.h"

namespace mla {

GqaWeights GqaWeights::random(const GqaConfig& c, uint64_t seed) {
  c.validate();
  std::mt19937_64 rng(seed);
  GqaWeights w;
  w.for_each_tensor(
      c, [&](const std::string&, const std::vector<int64_t>& shape, std::vector<float>& data) {
        const float bound = std::sqrt(3.0f / static_cast<float>(shape[1]));
        std::uniform_real_distribution<float> dist(-bound, bound);
        data.resize(static_cast<size_t>(shape[0] * shape[1]));
        for (float& v : data) v = dist(rng);
      });
  return w;
}

struct GqaLayer::Workspace {
  std::vector<float> freqs, cos_sin;
  std::vector<float> q, kv, o;  // (N, H*Dh), (N, 2*G*Dh), (N, H*Dh)
  std::vector<ops::AttentionParams> params;
  ops::FlashWorkspace flash;
  static void reserve(std::vector<float>& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  }
};

GqaLayer::GqaLayer(const GqaConfig& config, GqaWeights weights)
    : config_(config), weights_(std::move(weights)), ws_(std::make_unique<Workspace>()) {
  config_.validate();
  for_each_tensor_pair(config_, view_, weights_,
                       [](const std::string& name, const std::vector<int64_t>& shape,
                          const float*& ptr, const std::vector<float>& data) {
                         if (static_cast<int64_t>(data.size()) != shape[0] * shape[1]) {
                           throw Error("gqa weights: " + name + ": expected " +
                                       std::to_string(shape[0] * shape[1]) + " values, got " +
                                       std::to_string(data.size()));
                         }
                         ptr = data.data();
                       });
  init();
}

GqaLayer::GqaLayer(const GqaConfig& config, const GqaWeightView& borrowed)
    : config_(config), view_(borrowed), ws_(std::make_unique<Workspace>()) {
  config_.validate();
  view_.for_each_tensor(
      config_, [](const std::string& name, const std::vector<int64_t>&, const float* data) {
        if (data == nullptr) throw Error("gqa weights: " + name + ": not set");
      });
  init();
}

void GqaLayer::init() {
  ws_->freqs = ops::rope_frequencies(rope_params(config_));
  ws_->cos_sin.resize(static_cast<size_t>(config_.rope_dim));
}

GqaLayer::~GqaLayer() = default;
GqaLayer::GqaLayer(GqaLayer&&) noexcept = default;
GqaLayer& GqaLayer::operator=(GqaLayer&&) noexcept = default;

void GqaLayer::forward(std::span<const float> x, std::span<const PagedKvPool::SeqId> seqs,
                       std::span<const int64_t> new_tokens, PagedKvPool& pool, std::span<float> y) {
  const GqaConfig& c = config_;
  const int64_t n = detail::check_paged_step(x, y, seqs, new_tokens, c.hidden_size);
  if (pool.token_width() != paged_token_width()) {
    throw Error("forward: the page pool must hold rows of " + std::to_string(paged_token_width()) +
                " numbers");
  }
  pool.reserve(seqs, new_tokens);

  Workspace& ws = *ws_;
  const int64_t h = c.num_heads, g = c.num_kv_heads, dh = c.head_dim, d = c.hidden_size,
                kvw = 2 * g * dh;
  Workspace::reserve(ws.q, n * h * dh);
  Workspace::reserve(ws.kv, n * kvw);
  Workspace::reserve(ws.o, n * h * dh);
  ops::linear(x.data(), n, d, view_.wq, h * dh, ws.q.data());
  // K and V land side by side in each row, as the pool stores them: (N, [G*Dh | G*Dh]).
  ops::gemm(false, true, n, g * dh, d, 1.0f, x.data(), d, view_.wk, d, 0.0f, ws.kv.data(), kvw);
  ops::gemm(false, true, n, g * dh, d, 1.0f, x.data(), d, view_.wv, d, 0.0f, ws.kv.data() + g * dh,
            kvw);

  int64_t row = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const int64_t cached = pool.length(seqs[i]);
    for (int64_t t = 0; t < new_tokens[i]; ++t, ++row) {
      if (c.rope_dim > 0) {
        ops::rope_cos_sin(ws.freqs, 1.0f, cached + t, ws.cos_sin.data());
        ops::rope_apply(ws.q.data() + row * h * dh, h, dh, c.rope_dim, ws.cos_sin.data());
        ops::rope_apply(ws.kv.data() + row * kvw, g, dh, c.rope_dim, ws.cos_sin.data());
      }
      convert_from_f32(ws.kv.data() + row * kvw, static_cast<size_t>(kvw), pool.dtype(),
                       pool.writable_row(seqs[i], cached + t));
    }
  }
  row = 0;
  ws.params.clear();
  for (size_t i = 0; i < seqs.size(); ++i) {
    const void* const* table = pool.page_table(seqs[i]);
    ops::AttentionParams p;
    static_cast<ops::AttentionHeads&>(p) = gqa_attention_heads(c);
    p.q = ws.q.data() + row * h * dh;
    p.k = ops::KvView::paged(table, pool.page_size(), kvw, 0, pool.dtype());
    p.v = ops::KvView::paged(table, pool.page_size(), kvw, g * dh, pool.dtype());
    p.out = ws.o.data() + row * h * dh;
    p.num_queries = new_tokens[i];
    p.context_before = pool.length(seqs[i]);
    p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
    ws.params.push_back(p);
    row += new_tokens[i];
  }
  ops::flash_attention(ws.params, ws.flash);
  for (size_t i = 0; i < seqs.size(); ++i) pool.commit(seqs[i], new_tokens[i]);
  ops::linear(ws.o.data(), n, h * dh, view_.wo, d, y.data());
}

}  // namespace mla
