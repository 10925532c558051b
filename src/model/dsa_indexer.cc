// DeepSeek-V3.2's lightning indexer (include/mla/dsa.h): index keys and queries, index scores
// over a sequence's paged key cache, top-k selection per new token.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "mla/dsa.h"
#include "mla/error.h"
#include "mla/weights.h"
#include "model/random_init.h"
#include "model/rope_params.h"
#include "model/tensor_io.h"
#include "ops/gemm.h"
#include "ops/kv_view.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/sparse_select.h"

namespace mla {
namespace {

constexpr int64_t kKeyTile = 256;

int64_t query_input_width(const MlaConfig& m) {
  return m.has_q_lora() ? m.q_lora_rank : m.hidden_size;
}

// Per-thread buffers of the scoring loop.
struct ScoreScratch {
  std::vector<float> keys, dots, scores;
  std::vector<int32_t> order;
};

ScoreScratch& score_scratch() {
  thread_local ScoreScratch s;
  return s;
}

// I(s) = sum_h w_h ReLU(q_h . k_s) for keys s in [j0, j1) of `view`, into scores[s].
void score_keys(const ops::KvView& view, const float* q, const float* w, int64_t heads, int64_t dim,
                int64_t j0, int64_t j1, float* scores, ScoreScratch& s) {
  if (s.keys.size() < static_cast<size_t>(kKeyTile * dim))
    s.keys.resize(static_cast<size_t>(kKeyTile * dim));
  if (s.dots.size() < static_cast<size_t>(heads * kKeyTile))
    s.dots.resize(static_cast<size_t>(heads * kKeyTile));
  for (int64_t c0 = j0; c0 < j1; c0 += kKeyTile) {
    const int64_t nt = std::min(kKeyTile, j1 - c0);
    for (int64_t i = 0; i < nt; ++i) {
      float* dst = s.keys.data() + i * dim;
      if (view.dtype == DType::kF32) {
        std::copy_n(view.row<float>(c0 + i), dim, dst);
      } else {
        convert_to_f32(view.row<uint16_t>(c0 + i), DType::kBF16, static_cast<size_t>(dim), dst);
      }
    }
    ops::gemm(false, true, heads, nt, dim, 1.0f, q, dim, s.keys.data(), dim, 0.0f, s.dots.data(),
              kKeyTile);
    for (int64_t i = 0; i < nt; ++i) scores[c0 + i] = 0.0f;
    for (int64_t h = 0; h < heads; ++h) {
      const float* row = s.dots.data() + h * kKeyTile;
      const float wh = w[h];
      for (int64_t i = 0; i < nt; ++i) scores[c0 + i] += wh * std::max(row[i], 0.0f);
    }
  }
}

}  // namespace

void DsaConfig::validate(const MlaConfig& model) const {
  validate_fields(*this, "dsa");
  if (head_dim < model.qk_rope_head_dim) {
    fail("dsa", "head_dim",
         std::to_string(head_dim) + " cannot hold the " + std::to_string(model.qk_rope_head_dim) +
             " rotary entries");
  }
}

void DsaWeights::for_each_tensor(const MlaConfig& m, const DsaConfig& dsa, const Visitor& visit) {
  const int64_t di = dsa.head_dim, d = m.hidden_size;
  visit("indexer.wq_b.weight", {dsa.num_heads * di, query_input_width(m)}, wq_b);
  visit("indexer.wk.weight", {di, d}, wk);
  visit("indexer.k_norm.weight", {di}, k_norm);
  visit("indexer.k_norm.bias", {di}, k_norm_bias);
  visit("indexer.weights_proj.weight", {dsa.num_heads, d}, weights_proj);
}

void DsaWeights::check_shapes(const MlaConfig& m, const DsaConfig& dsa) const {
  const_cast<DsaWeights*>(this)->for_each_tensor(m, dsa, check_tensor);
}

DsaWeights DsaWeights::random(const MlaConfig& m, const DsaConfig& dsa, uint64_t seed) {
  dsa.validate(m);
  DsaWeights w;
  std::mt19937_64 rng(seed);
  w.for_each_tensor(
      m, dsa,
      [&rng](const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& data) {
        fill_random_tensor(name, shape, data, rng);
      });
  return w;
}

DsaWeights load_dsa_weights(const CheckpointDir& checkpoint, const MlaConfig& model,
                            const DsaConfig& dsa, int64_t layer) {
  dsa.validate(model);
  // The indexer's tensors are read like the layer's own, through a weights object of one list.
  DsaWeights w;
  const std::string prefix = layer_prefix(layer);
  w.for_each_tensor(
      model, dsa,
      [&](const std::string& suffix, const std::vector<int64_t>& shape, std::vector<float>& data) {
        data = load_checkpoint_tensor(checkpoint, prefix + suffix, shape,
                                      "(DSA needs DeepSeek-V3.2's indexer weights)");
      });
  return w;
}

DsaIndexer::DsaIndexer(const MlaConfig& model, const DsaConfig& dsa, DsaWeights weights)
    : model_(model), dsa_(dsa), w_(std::move(weights)) {
  model_.validate();
  dsa_.validate(model_);
  w_.check_shapes(model_, dsa_);
  const ops::RopeParams rope = rope_params(model_);
  freqs_ = ops::rope_frequencies(rope);
  amplitude_ = ops::rope_amplitude(rope);
}

void DsaIndexer::keys(const float* x, int64_t n, const int64_t* pos, float* k) const {
  const int64_t di = dsa_.head_dim, dr = model_.qk_rope_head_dim;
  ops::linear(x, n, model_.hidden_size, w_.wk.data(), di, k);
  std::vector<float> cos_sin(static_cast<size_t>(std::max<int64_t>(dr, 1)));
  for (int64_t i = 0; i < n; ++i) {
    float* row = k + i * di;  // LayerNorm in float32 with gain and bias
    ops::layer_norm_forward(row, static_cast<float*>(nullptr), static_cast<float*>(nullptr), row,
                            w_.k_norm.data(), w_.k_norm_bias.data(), 1, di, dsa_.layer_norm_eps, di,
                            di);
    if (dr == 0) continue;
    ops::rope_cos_sin(freqs_, amplitude_, pos[i], cos_sin.data());
    ops::rope_apply_half(row, 1, di, dr, cos_sin.data());
  }
}

void DsaIndexer::queries(const float* x, const float* c_q, int64_t n, const int64_t* pos, float* q,
                         float* w) const {
  const int64_t hi = dsa_.num_heads, di = dsa_.head_dim, dr = model_.qk_rope_head_dim;
  ops::linear(c_q, n, query_input_width(model_), w_.wq_b.data(), hi * di, q);
  ops::linear(x, n, model_.hidden_size, w_.weights_proj.data(), hi, w);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hi * di)));
  for (int64_t i = 0; i < n * hi; ++i) w[i] *= scale;
  if (dr == 0) return;
  std::vector<float> cos_sin(static_cast<size_t>(dr));
  for (int64_t i = 0; i < n; ++i) {
    ops::rope_cos_sin(freqs_, amplitude_, pos[i], cos_sin.data());
    ops::rope_apply_half(q + i * hi * di, hi, di, dr, cos_sin.data());
  }
}

void DsaIndexer::select(const float* x, const float* c_q, std::span<const PagedKvPool::SeqId> seqs,
                        std::span<const int64_t> new_tokens, PagedKvPool& index_pool, int64_t top_k,
                        int64_t capacity, int32_t* lists, int32_t* counts) {
  const int64_t hi = dsa_.num_heads, di = dsa_.head_dim;
  if (index_pool.token_width() != di) {
    throw Error("dsa: the index pool holds rows of " + std::to_string(index_pool.token_width()) +
                " numbers, the indexer needs " + std::to_string(di));
  }
  if (x == nullptr || c_q == nullptr || lists == nullptr || counts == nullptr)
    throw Error("dsa: null input or output");
  if (seqs.size() != new_tokens.size())
    throw Error("dsa: one new-token count per sequence is needed");
  if (top_k < 1) throw Error("dsa: top_k must be at least 1, got " + std::to_string(top_k));
  int64_t n = 0, longest = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (new_tokens[s] < 1 || new_tokens[s] > (int64_t{1} << 30))
      throw Error("dsa: every sequence needs at least 1 new token");
    const int64_t end = index_pool.length(seqs[s]) + new_tokens[s];  // throws for unknown ids
    longest = std::max(longest, end);
    n += new_tokens[s];
  }
  if (capacity < std::min(top_k, longest)) {
    throw Error("dsa: list capacity " + std::to_string(capacity) + " is below min(top_k, " +
                "longest sequence) = " + std::to_string(std::min(top_k, longest)));
  }
  pos_.resize(static_cast<size_t>(n));
  for (size_t s = 0, i = 0; s < seqs.size(); ++s) {
    for (int64_t t = 0; t < new_tokens[s]; ++t) pos_[i++] = index_pool.length(seqs[s]) + t;
  }
  k_.resize(static_cast<size_t>(n * di));
  q_.resize(static_cast<size_t>(n * hi * di));
  w_heads_.resize(static_cast<size_t>(n * hi));
  keys(x, n, pos_.data(), k_.data());
  queries(x, c_q, n, pos_.data(), q_.data(), w_heads_.data());
  for (size_t s = 0, i = 0; s < seqs.size(); ++s) {
    for (int64_t t = 0; t < new_tokens[s]; ++t, ++i) {
      convert_from_f32(k_.data() + i * static_cast<size_t>(di), static_cast<size_t>(di),
                       index_pool.dtype(), index_pool.writable_row(seqs[s], pos_[i]));
    }
  }

  // Token i: its sequence's view and the number of keys it may see.
  const auto view_of = [&](size_t s) {
    return ops::KvView::paged(index_pool.page_table(seqs[s]), index_pool.page_size(), di, 0,
                              index_pool.dtype());
  };
  const auto finish = [&](int64_t i, const float* scores, int64_t visible, ScoreScratch& sc) {
    counts[i] = static_cast<int32_t>(
        ops::select_top_k(scores, visible, top_k, lists + i * capacity, sc.order));
  };
  const int threads = omp_get_max_threads();
  std::vector<size_t> seq_of(static_cast<size_t>(n));
  for (size_t s = 0, i = 0; s < seqs.size(); ++s)
    for (int64_t t = 0; t < new_tokens[s]; ++t) seq_of[i++] = s;

  if (n >= threads) {  // prefill chunks and batches: one token per thread at a time
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      ScoreScratch& sc = score_scratch();
      const int64_t visible = pos_[static_cast<size_t>(i)] + 1;
      if (sc.scores.size() < static_cast<size_t>(visible))
        sc.scores.resize(static_cast<size_t>(visible));
      if (visible > top_k) {
        score_keys(view_of(seq_of[static_cast<size_t>(i)]), q_.data() + i * hi * di,
                   w_heads_.data() + i * hi, hi, di, 0, visible, sc.scores.data(), sc);
      }
      finish(i, sc.scores.data(), visible, sc);
    }
    return;
  }
  // Few tokens (decode): split each token's context across the threads.
  std::vector<float>& scores = score_scratch().scores;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t visible = pos_[static_cast<size_t>(i)] + 1;
    if (scores.size() < static_cast<size_t>(visible)) scores.resize(static_cast<size_t>(visible));
    if (visible > top_k) {
      const ops::KvView view = view_of(seq_of[static_cast<size_t>(i)]);
      const int64_t chunks = (visible + kKeyTile - 1) / kKeyTile;
      float* out = scores.data();
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < chunks; ++c) {
        score_keys(view, q_.data() + i * hi * di, w_heads_.data() + i * hi, hi, di, c * kKeyTile,
                   std::min(visible, (c + 1) * kKeyTile), out, score_scratch());
      }
    }
    finish(i, scores.data(), visible, score_scratch());
  }
}

}  // namespace mla
