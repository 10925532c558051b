// LmDecoder and sampling (include/mla/lm_decoder.h).
#include "mla/lm_decoder.h"

#include <algorithm>
#include <cmath>

#include "mla/error.h"
#include "mla/gqa_layer.h"
#include "mla/kv_cache.h"
#include "mla/layer.h"
#include "mla/paged_cache.h"
#include "mla/sampler.h"
#include "mla/weights.h"
#include "ops/norm.h"
#include "train/ffn_block.h"
#include "train/linear.h"
#include "train/lm_tensors.h"

namespace mla {
namespace {

constexpr int64_t kPageSize = 16;

}  // namespace

struct LmDecoder::Impl {
  const LmModel* model = nullptr;
  train::LmTensorSet<const float*> w;  // the model's parameters, borrowed
  int64_t capacity = 0, length = 0;
  std::vector<MlaLayer> mla;
  std::vector<LatentCache> latent;
  std::vector<GqaLayer> gqa;
  std::vector<PagedKvPool> pools;
  std::vector<PagedKvPool::SeqId> seq_ids;
  train::FfnBlock<float> ffn;
  std::vector<float> x, h, branch, mean, rstd, logits;  // (n, d) ... (V)

  Impl(const LmModel& m, int64_t cap)
      : model(&m),
        w(train::bind_tensors(m.config(), m.tensors(), m.params().data())),
        capacity(cap),
        ffn(m.config().ffn, m.config().d_model, m.config().ffn_hidden) {}

  void norm(const float* weight, const float* bias, const float* in, float* out, int64_t n) {
    const LmConfig& c = model->config();
    train::grow(mean, n);
    train::grow(rstd, n);
    if (c.norm == NormKind::kRmsNorm) {
      ops::rms_norm_forward(out, rstd.data(), in, weight, n, c.d_model, c.norm_eps, c.d_model,
                            c.d_model);
    } else {
      ops::layer_norm_forward(out, mean.data(), rstd.data(), in, weight, bias, n, c.d_model,
                              c.norm_eps, c.d_model, c.d_model);
    }
  }
};

LmDecoder::LmDecoder(const LmModel& model, int64_t capacity)
    : impl_(std::make_unique<Impl>(model, capacity)) {
  const LmConfig& c = model.config();
  if (capacity < 1) throw Error("decoder: capacity must be at least 1");
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const auto& w = impl_->w.layers[static_cast<size_t>(l)];
    if (c.attention == AttentionKind::kMla) {
      impl_->mla.emplace_back(c.mla, w.mla);
      impl_->mla.back().set_sparse(c.layer_sparse(l));  // generate as it was trained
      impl_->latent.emplace_back(c.mla, 1, capacity);
    } else {
      impl_->gqa.emplace_back(c.gqa, w.gqa);
      impl_->pools.emplace_back(c.gqa.cache_numbers_per_token(), kPageSize,
                                (capacity + kPageSize - 1) / kPageSize);
      impl_->seq_ids.push_back(impl_->pools.back().add_sequence());
    }
  }
}

LmDecoder::~LmDecoder() = default;
LmDecoder::LmDecoder(LmDecoder&&) noexcept = default;
LmDecoder& LmDecoder::operator=(LmDecoder&&) noexcept = default;

int64_t LmDecoder::length() const {
  return impl_->length;
}

int64_t LmDecoder::cache_bytes_per_token() const {
  const LmConfig& c = impl_->model->config();
  return c.num_layers * c.cache_numbers_per_token() * static_cast<int64_t>(sizeof(float));
}

std::span<const float> LmDecoder::feed(std::span<const int32_t> tokens) {
  Impl& s = *impl_;
  const LmConfig& c = s.model->config();
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t d = c.d_model;
  if (n < 1) throw Error("decoder: no tokens to feed");
  if (s.length + n > s.capacity) {
    throw Error("decoder: " + std::to_string(s.length) + " cached + " + std::to_string(n) +
                " new tokens exceed the capacity " + std::to_string(s.capacity));
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= c.vocab_size)
      throw Error("decoder: token " + std::to_string(t) + " is outside the vocabulary");
  }
  train::grow(s.x, n * d);
  train::grow(s.h, n * d);
  train::grow(s.branch, n * d);
  train::embedding_forward(s.x.data(), tokens.data(), s.w.wte, n, d);
  const auto span_n = static_cast<size_t>(n * d);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const auto& w = s.w.layers[static_cast<size_t>(l)];
    s.norm(w.ln1_w, w.ln1_b, s.x.data(), s.h.data(), n);
    std::span<const float> in(s.h.data(), span_n);
    std::span<float> out(s.branch.data(), span_n);
    if (c.attention == AttentionKind::kMla) {
      s.mla[static_cast<size_t>(l)].forward(in, 1, n, s.latent[static_cast<size_t>(l)], out);
    } else {
      const int64_t count[1] = {n};
      s.gqa[static_cast<size_t>(l)].forward(in, std::span(&s.seq_ids[static_cast<size_t>(l)], 1),
                                            count, s.pools[static_cast<size_t>(l)], out);
    }
    for (int64_t i = 0; i < n * d; ++i)
      s.x[static_cast<size_t>(i)] += s.branch[static_cast<size_t>(i)];
    s.norm(w.ln2_w, w.ln2_b, s.x.data(), s.h.data(), n);
    s.ffn.forward(s.branch.data(), s.h.data(), w.ffn, n);
    for (int64_t i = 0; i < n * d; ++i)
      s.x[static_cast<size_t>(i)] += s.branch[static_cast<size_t>(i)];
  }
  // Only the last token's logits are needed.
  s.norm(s.w.lnf_w, s.w.lnf_b, s.x.data() + (n - 1) * d, s.h.data(), 1);
  train::grow(s.logits, c.vocab_size);
  train::linear_forward(s.logits.data(), s.h.data(), s.w.head, 1, d, c.vocab_size);
  s.length += n;
  return std::span<const float>(s.logits.data(), static_cast<size_t>(c.vocab_size));
}

std::vector<int32_t> generate(const LmModel& model, std::span<const int32_t> prompt,
                              const SampleOptions& o) {
  if (prompt.empty()) throw Error("generate: the prompt is empty");
  if (o.max_tokens < 0) throw Error("generate: max_tokens must not be negative");
  if (o.top_k < 0) throw Error("generate: top_k must not be negative");
  // The one sampler of the project (include/mla/sampler.h): temperature <= 0 is greedy.
  SamplerParams params;
  params.temperature = std::max(o.temperature, 0.0);
  params.top_k = o.top_k;
  params.repeat_last_n = 0;
  params.seed = o.seed;
  Sampler sampler(params);
  std::vector<int32_t> out;
  if (o.recompute) {
    // The reference path: the whole sequence through the training forward at every step.
    LmModel copy(model.config());
    std::copy(model.params().begin(), model.params().end(), copy.params().begin());
    std::vector<int32_t> seq(prompt.begin(), prompt.end());
    const int64_t v = model.config().vocab_size;
    for (int64_t i = 0; i < o.max_tokens; ++i) {
      const auto s = static_cast<int64_t>(seq.size());
      copy.forward(seq, {}, 1, s);
      const int32_t t = sampler.sample(
          copy.logits().subspan(static_cast<size_t>((s - 1) * v), static_cast<size_t>(v)));
      out.push_back(t);
      seq.push_back(t);
    }
    return out;
  }
  LmDecoder decoder(model,
                    static_cast<int64_t>(prompt.size()) + std::max<int64_t>(o.max_tokens, 1));
  std::span<const float> logits = decoder.feed(prompt);
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    const int32_t t = sampler.sample(logits);
    out.push_back(t);
    if (i + 1 < o.max_tokens) logits = decoder.feed(std::span(&t, 1));
  }
  return out;
}

}  // namespace mla
