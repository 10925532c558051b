// LmModelT forward and backward: one call per layer piece, backward mirroring forward in reverse
// (llm.c's gpt2_forward / gpt2_backward). Legend: B batch, S tokens, N = B*S, d width,
// V vocabulary, L layers.
#include <cstring>

#include "mla/error.h"
#include "mla/model_lm.h"
#include "ops/norm.h"
#include "train/activation.h"
#include "train/cross_entropy.h"
#include "train/ffn_block.h"
#include "train/gqa_block.h"
#include "train/linear.h"
#include "train/lm_tensors.h"
#include "train/mla_block.h"

namespace mla {

using train::grow;
using train::zero_first;

namespace detail {

template <typename T>
struct LmState {
  train::LmTensorSet<T*> w, g;  // into the parameter and gradient buffers
  std::vector<train::MlaBlock<T>> mla;
  std::vector<train::GqaBlock<T>> gqa;
  std::vector<train::FfnBlock<T>> ffn;
  typename train::MlaBlock<T>::Scratch mla_scratch;
  typename train::GqaBlock<T>::Scratch gqa_scratch;
  typename train::FfnBlock<T>::Scratch ffn_scratch;

  int64_t batch = 0, seq = 0;
  bool training = false, has_targets = false;
  uint64_t dropout_key = 0;
  double loss = 0.0;
  int64_t scored = 0;
  std::vector<int32_t> tokens, targets;  // (N)
  std::vector<T> resid;                  // (L+1, N, d): input of each layer, then the output
  std::vector<T> resid_mid;              // (L, N, d): after the attention residual
  std::vector<T> ln1, ln2;               // (L, N, d)
  std::vector<T> ln1_mean, ln1_rstd, ln2_mean, ln2_rstd;  // (L, N)
  std::vector<T> branch;                   // (N, d) attention / ffn output before the residual add
  std::vector<T> lnf, lnf_mean, lnf_rstd;  // (N, d), (N), (N)
  std::vector<T> logits, probs;            // (N, V)
  std::vector<T> dresid, dln, dbranch, dlnf, dlogits;  // backward scratch
};

}  // namespace detail

namespace {

using detail::LmState;

template <typename T>
void norm_forward(const LmConfig& c, T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b,
                  int64_t n) {
  if (c.norm == NormKind::kRmsNorm) {
    ops::rms_norm_forward(out, rstd, inp, w, n, c.d_model, c.norm_eps, c.d_model, c.d_model);
  } else {
    ops::layer_norm_forward(out, mean, rstd, inp, w, b, n, c.d_model, c.norm_eps, c.d_model,
                            c.d_model);
  }
}

template <typename T>
void norm_backward(const LmConfig& c, T* dinp, T* dw, T* db, const T* dout, const T* inp,
                   const T* w, const T* mean, const T* rstd, int64_t n) {
  if (c.norm == NormKind::kRmsNorm) {
    ops::rms_norm_backward(dinp, dw, dout, inp, w, rstd, n, c.d_model, c.d_model, c.d_model);
  } else {
    ops::layer_norm_backward(dinp, dw, db, dout, inp, w, mean, rstd, n, c.d_model, c.d_model,
                             c.d_model);
  }
}

}  // namespace

template <typename T>
LmModelT<T>::LmModelT(const LmConfig& config)
    : config_(config), tensors_(lm_parameter_list(config)), state_(std::make_unique<LmState<T>>()) {
  const ParamTensor& last = tensors_.back();
  params_.assign(static_cast<size_t>(last.offset + last.numel), T(0));
  grads_.assign(params_.size(), T(0));
  LmState<T>& s = *state_;
  s.w = train::bind_tensors(config_, tensors_, params_.data());
  s.g = train::bind_tensors(config_, tensors_, grads_.data());
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    if (config_.attention == AttentionKind::kMla) {
      s.mla.emplace_back(config_.mla);
      s.mla.back().set_sparse(config_.layer_sparse(l));
      s.mla.back().set_absorbed(config_.absorbed);
    } else {
      s.gqa.emplace_back(config_.gqa);
    }
    s.ffn.emplace_back(config_.ffn, config_.d_model, config_.ffn_hidden);
  }
}

template <typename T>
LmModelT<T>::~LmModelT() = default;
template <typename T>
LmModelT<T>::LmModelT(LmModelT&&) noexcept = default;
template <typename T>
LmModelT<T>& LmModelT<T>::operator=(LmModelT&&) noexcept = default;

template <typename T>
void LmModelT<T>::zero_grad() {
  std::fill(grads_.begin(), grads_.end(), T(0));
}

template <typename T>
std::span<const T> LmModelT<T>::logits() const {
  const LmState<T>& s = *state_;
  return std::span<const T>(s.logits.data(),
                            static_cast<size_t>(s.batch * s.seq * config_.vocab_size));
}

template <typename T>
double LmModelT<T>::forward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                            int64_t batch, int64_t seq, bool training, uint64_t dropout_key) {
  const LmConfig& c = config_;
  if (batch < 1 || seq < 1) throw Error("forward: batch and sequence length must be at least 1");
  const int64_t n = batch * seq, d = c.d_model, v = c.vocab_size, layers = c.num_layers;
  if (static_cast<int64_t>(tokens.size()) != n) {
    throw Error("forward: " + std::to_string(tokens.size()) +
                " tokens for batch x seq = " + std::to_string(n));
  }
  if (!targets.empty() && static_cast<int64_t>(targets.size()) != n) {
    throw Error("forward: " + std::to_string(targets.size()) +
                " targets for batch x seq = " + std::to_string(n));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= v) {
      throw Error("forward: token " + std::to_string(tokens[i]) + " at position " +
                  std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(v) + ")");
    }
    if (!targets.empty() && targets[i] >= v) {
      throw Error("forward: target " + std::to_string(targets[i]) + " at position " +
                  std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(v) + ")");
    }
  }
  LmState<T>& s = *state_;
  s.batch = batch;
  s.seq = seq;
  s.training = training && c.dropout > 0.0;
  s.dropout_key = dropout_key;
  s.has_targets = !targets.empty();
  s.tokens.assign(tokens.begin(), tokens.end());
  s.targets.assign(targets.begin(), targets.end());
  grow(s.resid, (layers + 1) * n * d);
  grow(s.resid_mid, layers * n * d);
  grow(s.ln1, layers * n * d);
  grow(s.ln2, layers * n * d);
  for (auto* buf : {&s.ln1_mean, &s.ln1_rstd, &s.ln2_mean, &s.ln2_rstd}) grow(*buf, layers * n);
  grow(s.branch, n * d);

  train::embedding_forward(s.resid.data(), s.tokens.data(), s.w.wte, n, d);
  for (int64_t l = 0; l < layers; ++l) {
    const auto& w = s.w.layers[static_cast<size_t>(l)];
    T* x = s.resid.data() + l * n * d;
    T* mid = s.resid_mid.data() + l * n * d;
    T* ln1 = s.ln1.data() + l * n * d;
    T* ln2 = s.ln2.data() + l * n * d;
    norm_forward(c, ln1, s.ln1_mean.data() + l * n, s.ln1_rstd.data() + l * n, x, w.ln1_w, w.ln1_b,
                 n);
    if (c.attention == AttentionKind::kMla) {
      // Attention dropout follows `training` alone: the residual dropout may be 0 without it.
      s.mla[static_cast<size_t>(l)].forward(s.branch.data(), ln1, w.mla, batch, seq, training,
                                            train::dropout_key(dropout_key, l, 2));
    } else {
      s.gqa[static_cast<size_t>(l)].forward(s.branch.data(), ln1, w.gqa, batch, seq);
    }
    if (s.training) {
      train::dropout_forward(s.branch.data(), s.branch.data(), n * d, c.dropout,
                             train::dropout_key(dropout_key, l, 0));
    }
    for (int64_t i = 0; i < n * d; ++i) mid[i] = x[i] + s.branch[static_cast<size_t>(i)];
    norm_forward(c, ln2, s.ln2_mean.data() + l * n, s.ln2_rstd.data() + l * n, mid, w.ln2_w,
                 w.ln2_b, n);
    s.ffn[static_cast<size_t>(l)].forward(s.branch.data(), ln2, w.ffn, n);
    if (s.training) {
      train::dropout_forward(s.branch.data(), s.branch.data(), n * d, c.dropout,
                             train::dropout_key(dropout_key, l, 1));
    }
    T* next = s.resid.data() + (l + 1) * n * d;
    for (int64_t i = 0; i < n * d; ++i) next[i] = mid[i] + s.branch[static_cast<size_t>(i)];
  }
  grow(s.lnf, n * d);
  grow(s.lnf_mean, n);
  grow(s.lnf_rstd, n);
  grow(s.logits, n * v);
  norm_forward(c, s.lnf.data(), s.lnf_mean.data(), s.lnf_rstd.data(),
               s.resid.data() + layers * n * d, s.w.lnf_w, s.w.lnf_b, n);
  train::linear_forward(s.logits.data(), s.lnf.data(), s.w.head, n, d, v);
  s.loss = 0.0;
  s.scored = 0;
  if (s.has_targets) {
    grow(s.probs, n * v);
    s.loss = train::cross_entropy_forward(s.probs.data(), s.logits.data(), s.targets.data(), n, v,
                                          &s.scored);
  }
  return s.loss;
}

template <typename T>
void LmModelT<T>::backward() {
  const LmConfig& c = config_;
  LmState<T>& s = *state_;
  if (!s.has_targets) throw Error("backward: the last forward had no targets");
  const int64_t n = s.batch * s.seq, d = c.d_model, v = c.vocab_size, layers = c.num_layers;

  zero_first(s.dlogits, n * v);
  train::cross_entropy_backward(s.dlogits.data(), s.probs.data(), s.targets.data(), n, v, s.scored,
                                1.0);
  zero_first(s.dlnf, n * d);
  train::linear_backward(s.dlnf.data(), s.g.head, s.dlogits.data(), s.lnf.data(), s.w.head, n, d,
                         v);
  zero_first(s.dresid, n * d);
  norm_backward(c, s.dresid.data(), s.g.lnf_w, s.g.lnf_b, s.dlnf.data(),
                s.resid.data() + layers * n * d, s.w.lnf_w, s.lnf_mean.data(), s.lnf_rstd.data(),
                n);

  // dresid holds d(loss)/d(residual stream) and flows through the identity paths unchanged; each
  // branch adds its contribution to it.
  for (int64_t l = layers - 1; l >= 0; --l) {
    const auto& w = s.w.layers[static_cast<size_t>(l)];
    const auto& g = s.g.layers[static_cast<size_t>(l)];
    const T* x = s.resid.data() + l * n * d;
    const T* mid = s.resid_mid.data() + l * n * d;
    const T* ln1 = s.ln1.data() + l * n * d;
    const T* ln2 = s.ln2.data() + l * n * d;
    const T* dbranch = s.dresid.data();
    if (s.training) {
      zero_first(s.dbranch, n * d);
      train::dropout_backward(s.dbranch.data(), s.dresid.data(), n * d, c.dropout,
                              train::dropout_key(s.dropout_key, l, 1));
      dbranch = s.dbranch.data();
    }
    zero_first(s.dln, n * d);
    s.ffn[static_cast<size_t>(l)].backward(s.dln.data(), g.ffn, dbranch, ln2, w.ffn, s.ffn_scratch);
    norm_backward(c, s.dresid.data(), g.ln2_w, g.ln2_b, s.dln.data(), mid, w.ln2_w,
                  s.ln2_mean.data() + l * n, s.ln2_rstd.data() + l * n, n);

    dbranch = s.dresid.data();
    if (s.training) {
      zero_first(s.dbranch, n * d);
      train::dropout_backward(s.dbranch.data(), s.dresid.data(), n * d, c.dropout,
                              train::dropout_key(s.dropout_key, l, 0));
      dbranch = s.dbranch.data();
    }
    zero_first(s.dln, n * d);
    if (c.attention == AttentionKind::kMla) {
      s.mla[static_cast<size_t>(l)].backward(s.dln.data(), g.mla, dbranch, ln1, w.mla,
                                             s.mla_scratch);
    } else {
      s.gqa[static_cast<size_t>(l)].backward(s.dln.data(), g.gqa, dbranch, ln1, w.gqa,
                                             s.gqa_scratch);
    }
    norm_backward(c, s.dresid.data(), g.ln1_w, g.ln1_b, s.dln.data(), x, w.ln1_w,
                  s.ln1_mean.data() + l * n, s.ln1_rstd.data() + l * n, n);
  }
  train::embedding_backward(s.g.wte, s.dresid.data(), s.tokens.data(), n, d);
}

template class LmModelT<float>;
template class LmModelT<double>;

}  // namespace mla
