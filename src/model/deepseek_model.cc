// DeepseekModel: embedding, pre-norm MLA + MLP/MoE blocks, final norm, LM head, over one paged
// latent cache per layer (every pool holds the same sequences under the same ids).
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mla/error.h"
#include "mla/layer.h"
#include "mla/model.h"
#include "mla/weights.h"
#include "model/model_parts.h"
#include "ops/cache_line_vector.h"
#include "ops/norm.h"

namespace mla {

using detail::Matrix;
using detail::MoeWeights;
using detail::SwiGlu;

// One decoder layer: its norms, attention (with its cache pools) and MLP or MoE.
struct ModelBlock {
  std::vector<float> attn_norm, ffn_norm;
  std::unique_ptr<MlaLayer> attn;
  bool moe = false;
  SwiGlu mlp;
  MoeWeights experts;
  std::unique_ptr<PagedKvPool> pool, index_pool;
};

struct DeepseekModel::Impl {
  DeepseekConfig config;
  Options options;
  std::unique_ptr<CheckpointDir> checkpoint;  // the mapping bf16 weights point into
  Matrix embed, head_own;
  const Matrix* head = nullptr;
  std::vector<float> norm;
  std::vector<ModelBlock> blocks;
  // Grow-only workspace: a warm step of a size seen before allocates nothing.
  // (On cache lines: rows that the skinny kernels would otherwise copy to align them.)
  ops::CacheLineVector<float> h, xn, branch, last, hidden, discard;
  detail::MoeScratch moe;
  std::vector<int64_t> last_rows;

  void make_pools();
  void quantize();  // options.int8
  void pass(const int32_t* tokens, std::span<const SeqId> seqs, std::span<const int64_t> counts,
            float* logits, bool last_only);
  void step(std::span<const int32_t> tokens, std::span<const SeqId> seqs,
            std::span<const int64_t> new_tokens, std::span<float> logits, bool last_only);
};

namespace {

template <class Vector>
void grow(Vector& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

DType compute_dtype(DType requested) {
  if (requested != DType::kF32 && requested != DType::kBF16) {
    throw Error("model: weight dtype " + std::string(dtype_name(requested)) +
                " is not a compute type (use f32 or bf16)");
  }
  return requested;
}

std::string mlp_prefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".mlp.";
}

// A router bias in a layer whose topk_method has none is a config/checkpoint mismatch: refuse it
// rather than silently ignore what chooses the experts.
void check_router_bias(const CheckpointDir& ck, const DeepseekConfig& c, int64_t layer) {
  const std::string name = mlp_prefix(layer) + "gate.e_score_correction_bias";
  if (ck.contains(name) && !c.router.has_bias()) {
    throw Error(ck.file_for(name).path() + ": tensor '" + name + "': topk_method is " +
                enum_name(c.router.method) +
                ", which has no correction bias (only noaux_tc uses one)");
  }
}

}  // namespace

void DeepseekModel::Impl::quantize() {
  if (!options.int8) return;
  const auto swiglu = [](SwiGlu& s) {
    s.gate.quantize_int8();
    s.up.quantize_int8();
    s.down.quantize_int8();
  };
  if (head != &embed) head_own.quantize_int8();
  for (ModelBlock& b : blocks) {
    if (!b.mlp.gate.empty()) swiglu(b.mlp);
    for (SwiGlu& e : b.experts.experts) swiglu(e);
    if (!b.experts.shared.gate.empty()) swiglu(b.experts.shared);
  }
}

void DeepseekModel::Impl::make_pools() {
  const int64_t pages = (options.cache_tokens + options.page_size - 1) / options.page_size + 16;
  const DType cache_dtype = options.cache_dtype.value_or(
      options.weight_dtype == DType::kF32 ? DType::kF32 : DType::kBF16);
  const bool quantized = cache_dtype == DType::kF8E4M3 || cache_dtype == DType::kI8;
  if (!quantized && cache_dtype != DType::kF32 && cache_dtype != DType::kBF16) {
    throw Error("model: cache dtype " + std::string(dtype_name(cache_dtype)) +
                " is not supported (use F32, BF16, F8_E4M3 or I8)");
  }
  if (quantized && config.dsa) {
    throw Error("model: a " + std::string(dtype_name(cache_dtype)) +
                " latent cache does not serve DSA (sparse attention reads float rows); use f32 or "
                "bf16");
  }
  const int64_t rope_width = quantized ? config.attention.qk_rope_head_dim : 0;
  for (ModelBlock& b : blocks) {
    b.pool = std::make_unique<PagedKvPool>(b.attn->paged_token_width(AttentionPath::kAbsorbed),
                                           options.page_size, pages, cache_dtype, rope_width);
    if (config.dsa) {
      b.index_pool = std::make_unique<PagedKvPool>(config.dsa_config.head_dim, options.page_size,
                                                   pages, DType::kF32);
    }
  }
}

DeepseekModel DeepseekModel::load(const std::string& dir, const Options& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir + ": not a directory (expected a model folder)");
  auto impl = std::make_unique<Impl>();
  impl->config = load_deepseek_config((fs::path(dir) / "config.json").string());
  impl->options = options;
  const DType dt = compute_dtype(options.weight_dtype);
  impl->checkpoint = std::make_unique<CheckpointDir>(CheckpointDir::open(dir));
  const CheckpointDir& ck = *impl->checkpoint;
  const DeepseekConfig& c = impl->config;
  const int64_t d = c.attention.hidden_size;
  impl->embed = detail::load_matrix(ck, "model.embed_tokens.weight", c.vocab_size, d, dt);
  if (c.tie_word_embeddings) {
    impl->head = &impl->embed;
  } else {
    impl->head_own = detail::load_matrix(ck, "lm_head.weight", c.vocab_size, d, dt);
    impl->head = &impl->head_own;
  }
  impl->norm = detail::load_vector(ck, "model.norm.weight", d);
  impl->blocks.resize(static_cast<size_t>(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    ModelBlock& b = impl->blocks[static_cast<size_t>(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    b.attn_norm = detail::load_vector(ck, p + "input_layernorm.weight", d);
    b.ffn_norm = detail::load_vector(ck, p + "post_attention_layernorm.weight", d);
    b.attn = std::make_unique<MlaLayer>(c.attention, load_layer_weights(ck, c.attention, l), dt);
    if (c.dsa) {
      b.attn->set_indexer(DsaIndexer(c.attention, c.dsa_config,
                                     load_dsa_weights(ck, c.attention, c.dsa_config, l)));
      SparseSpec spec;
      spec.kind = SparseKind::kDsa;
      spec.top_k = c.dsa_config.top_k;
      b.attn->set_sparse(spec);
    }
    b.moe = c.is_moe_layer(l);
    const std::string mp = mlp_prefix(l);
    if (!b.moe) {
      b.mlp = detail::load_swiglu(ck, mp, d, c.intermediate_size, dt);
      continue;
    }
    check_router_bias(ck, c, l);
    const int64_t e = c.router.num_experts, m = c.moe_intermediate_size;
    // The router stays float32 whatever the compute dtype: it decides, and is small.
    b.experts.gate = detail::load_matrix(ck, mp + "gate.weight", e, d, DType::kF32);
    if (c.router.has_bias()) {
      b.experts.bias = detail::load_vector(ck, mp + "gate.e_score_correction_bias", e);
    }
    b.experts.experts.reserve(static_cast<size_t>(e));
    for (int64_t i = 0; i < e; ++i) {
      b.experts.experts.push_back(
          detail::load_swiglu(ck, mp + "experts." + std::to_string(i) + ".", d, m, dt));
    }
    if (c.n_shared_experts > 0) {
      b.experts.shared =
          detail::load_swiglu(ck, mp + "shared_experts.", d, c.n_shared_experts * m, dt);
    }
  }
  impl->quantize();
  impl->make_pools();
  return DeepseekModel(std::move(impl));
}

DeepseekModel DeepseekModel::random(const DeepseekConfig& config, uint64_t seed,
                                    const Options& options) {
  config.validate();
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->options = options;
  const DType dt = compute_dtype(options.weight_dtype);
  const DeepseekConfig& c = impl->config;
  const int64_t d = c.attention.hidden_size;
  uint64_t s = seed * 1000003;
  impl->embed = detail::random_matrix(c.vocab_size, d, dt, ++s);
  impl->head_own = detail::random_matrix(c.vocab_size, d, dt, ++s);
  impl->head = c.tie_word_embeddings ? &impl->embed : &impl->head_own;
  impl->norm = detail::random_vector(d, 0.8f, 1.2f, ++s);
  impl->blocks.resize(static_cast<size_t>(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    ModelBlock& b = impl->blocks[static_cast<size_t>(l)];
    b.attn_norm = detail::random_vector(d, 0.8f, 1.2f, ++s);
    b.ffn_norm = detail::random_vector(d, 0.8f, 1.2f, ++s);
    b.attn = std::make_unique<MlaLayer>(c.attention, MlaWeights::random(c.attention, ++s), dt);
    if (c.dsa) {
      b.attn->set_indexer(DsaIndexer(c.attention, c.dsa_config,
                                     DsaWeights::random(c.attention, c.dsa_config, ++s)));
      SparseSpec spec;
      spec.kind = SparseKind::kDsa;
      spec.top_k = c.dsa_config.top_k;
      b.attn->set_sparse(spec);
    }
    b.moe = c.is_moe_layer(l);
    if (!b.moe) {
      b.mlp = detail::random_swiglu(d, c.intermediate_size, dt, ++s);
      continue;
    }
    const int64_t e = c.router.num_experts, m = c.moe_intermediate_size;
    b.experts.gate = detail::random_matrix(e, d, DType::kF32, ++s);
    if (c.router.has_bias()) b.experts.bias = detail::random_vector(e, -0.05f, 0.05f, ++s);
    for (int64_t i = 0; i < e; ++i)
      b.experts.experts.push_back(detail::random_swiglu(d, m, dt, ++s));
    if (c.n_shared_experts > 0)
      b.experts.shared = detail::random_swiglu(d, c.n_shared_experts * m, dt, ++s);
  }
  impl->quantize();
  impl->make_pools();
  return DeepseekModel(std::move(impl));
}

DeepseekModel::DeepseekModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeepseekModel::DeepseekModel(DeepseekModel&&) noexcept = default;
DeepseekModel& DeepseekModel::operator=(DeepseekModel&&) noexcept = default;
DeepseekModel::~DeepseekModel() = default;

const DeepseekConfig& DeepseekModel::config() const {
  return impl_->config;
}
DType DeepseekModel::weight_dtype() const {
  return impl_->options.weight_dtype;
}

DType DeepseekModel::cache_dtype() const {
  return impl_->blocks.front().pool->dtype();
}

int64_t DeepseekModel::cache_bytes_per_token() const {
  int64_t bytes = 0;
  for (const ModelBlock& b : impl_->blocks) {
    bytes += b.pool->row_bytes() + (b.index_pool ? b.index_pool->row_bytes() : 0);
  }
  return bytes;
}

int64_t DeepseekModel::weight_bytes() const {
  const Impl& m = *impl_;
  int64_t bytes = m.embed.bytes() + (m.head == &m.embed ? 0 : m.head->bytes()) +
                  static_cast<int64_t>(m.norm.size() * 4);
  const int64_t attn = count_model(m.config).attention_parameters_per_layer;
  const int64_t attn_bytes = m.options.weight_dtype == DType::kF32 ? 4 : 2;
  for (const ModelBlock& b : m.blocks) {
    bytes += attn * attn_bytes;  // approximately: kv_b and the norms stay float32 in MlaLayer
    bytes += b.moe ? b.experts.bytes() : b.mlp.bytes();
  }
  return bytes;
}

int64_t DeepseekModel::cache_bytes() const {
  int64_t bytes = 0;
  for (const ModelBlock& b : impl_->blocks) {
    bytes += b.pool->bytes_used() + (b.index_pool ? b.index_pool->bytes_used() : 0);
  }
  return bytes;
}

DeepseekModel::SeqId DeepseekModel::add_sequence() {
  SeqId id = -1;
  for (ModelBlock& b : impl_->blocks) {
    const SeqId got = b.pool->add_sequence();
    if (b.index_pool) b.index_pool->add_sequence();
    if (id >= 0 && got != id) throw Error("model: the layers' caches disagree on sequence ids");
    id = got;
  }
  return id;
}

void DeepseekModel::remove_sequence(SeqId seq) {
  for (ModelBlock& b : impl_->blocks) {
    b.pool->remove_sequence(seq);
    if (b.index_pool) b.index_pool->remove_sequence(seq);
  }
}

int64_t DeepseekModel::length(SeqId seq) const {
  return impl_->blocks.front().pool->length(seq);
}

DeepseekModel::SeqId DeepseekModel::fork_sequence(SeqId parent) {
  SeqId id = -1;
  for (ModelBlock& b : impl_->blocks) {
    const SeqId got = b.pool->fork(parent);
    if (b.index_pool) b.index_pool->fork(parent);
    if (id >= 0 && got != id) throw Error("model: the layers' caches disagree on sequence ids");
    id = got;
  }
  return id;
}

void DeepseekModel::truncate_sequence(SeqId seq, int64_t length) {
  for (ModelBlock& b : impl_->blocks) {
    b.pool->truncate(seq, length);
    if (b.index_pool) b.index_pool->truncate(seq, length);
  }
}

int64_t DeepseekModel::page_size() const {
  return impl_->blocks.front().pool->page_size();
}
int64_t DeepseekModel::pages_total() const {
  return impl_->blocks.front().pool->pages_total();
}
int64_t DeepseekModel::pages_free() const {
  return impl_->blocks.front().pool->pages_free();
}

// One pass of every layer over the packed new tokens of `seqs`.
void DeepseekModel::Impl::pass(const int32_t* tokens, std::span<const SeqId> seqs,
                               std::span<const int64_t> counts, float* logits, bool last_only) {
  const int64_t d = config.attention.hidden_size;
  const double eps = config.attention.rms_norm_eps;
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  grow(h, n * d);
  grow(xn, n * d);
  grow(branch, n * d);
  for (int64_t i = 0; i < n; ++i) embed.copy_row(tokens[i], h.data() + i * d);
  for (ModelBlock& b : blocks) {
    ops::rms_norm_forward<float>(xn.data(), nullptr, h.data(), b.attn_norm.data(), n, d, eps, d, d);
    const std::span<const float> x(xn.data(), static_cast<size_t>(n * d));
    const std::span<float> y(branch.data(), static_cast<size_t>(n * d));
    if (b.index_pool) {
      b.attn->forward(x, seqs, counts, *b.pool, AttentionPath::kAbsorbed, y, *b.index_pool);
    } else {
      b.attn->forward(x, seqs, counts, *b.pool, AttentionPath::kAbsorbed, y);
    }
    for (int64_t i = 0; i < n * d; ++i) h[i] += branch[i];
    ops::rms_norm_forward<float>(xn.data(), nullptr, h.data(), b.ffn_norm.data(), n, d, eps, d, d);
    if (b.moe) {
      detail::moe_forward(config.router, b.experts, xn.data(), n, d, moe, branch.data());
    } else {
      grow(hidden, 2 * n * b.mlp.width());
      detail::swiglu_forward(b.mlp, xn.data(), n, hidden.data(), branch.data());
    }
    for (int64_t i = 0; i < n * d; ++i) h[i] += branch[i];
  }
  // Final norm and head, on every row or on the last new row of each sequence.
  int64_t rows = n;
  const float* src = h.data();
  if (last_only) {
    rows = static_cast<int64_t>(seqs.size());
    grow(last, rows * d);
    int64_t end = 0;
    for (int64_t i = 0; i < rows; ++i) {
      end += counts[static_cast<size_t>(i)];
      std::memcpy(last.data() + i * d, h.data() + (end - 1) * d,
                  static_cast<size_t>(d) * sizeof(float));
    }
    src = last.data();
  }
  grow(xn, rows * d);
  ops::rms_norm_forward<float>(xn.data(), nullptr, src, norm.data(), rows, d, eps, d, d);
  head->apply(xn.data(), rows, logits);
}

void DeepseekModel::Impl::step(std::span<const int32_t> tokens, std::span<const SeqId> seqs,
                               std::span<const int64_t> new_tokens, std::span<float> logits,
                               bool last_only) {
  const int64_t vocab = config.vocab_size;
  if (seqs.size() != new_tokens.size() || seqs.empty()) {
    throw Error("forward: " + std::to_string(seqs.size()) + " sequences but " +
                std::to_string(new_tokens.size()) + " token counts");
  }
  int64_t n = 0, pages = 0;
  const PagedKvPool& pool = *blocks.front().pool;
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (new_tokens[i] < 1) throw Error("forward: every sequence needs at least one new token");
    if (!pool.contains(seqs[i]))
      throw Error("forward: unknown sequence " + std::to_string(seqs[i]));
    const int64_t len = pool.length(seqs[i]), ps = pool.page_size();
    pages += (len + new_tokens[i] + ps - 1) / ps - (len + ps - 1) / ps;
    n += new_tokens[i];
  }
  if (static_cast<int64_t>(tokens.size()) != n) {
    throw Error("forward: " + std::to_string(tokens.size()) + " tokens given, the counts add to " +
                std::to_string(n));
  }
  const int64_t out_rows = last_only ? static_cast<int64_t>(seqs.size()) : n;
  if (static_cast<int64_t>(logits.size()) != out_rows * vocab) {
    throw Error("forward: logits hold " + std::to_string(logits.size()) + " values, expected " +
                std::to_string(out_rows * vocab));
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      throw Error("forward: token " + std::to_string(i) + " is " + std::to_string(tokens[i]) +
                  ", outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
  if (pages > pool.pages_free()) {
    throw Error("cache: out of pages: the step needs " + std::to_string(pages) + ", " +
                std::to_string(pool.pages_free()) + " free (raise the cache size)");
  }
  const int64_t chunk = std::max<int64_t>(1, options.prefill_chunk);
  if (n <= chunk) {
    pass(tokens.data(), seqs, new_tokens, logits.data(), last_only);
    return;
  }
  // Chunked: each sequence alone, at most `chunk` tokens per pass, so activations stay bounded.
  int64_t token0 = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    for (int64_t done = 0; done < new_tokens[i]; done += chunk) {
      const int64_t count = std::min(chunk, new_tokens[i] - done);
      const bool final_chunk = done + count == new_tokens[i];
      float* out = nullptr;
      if (!last_only) {
        out = logits.data() + (token0 + done) * vocab;
      } else if (final_chunk) {
        out = logits.data() + static_cast<int64_t>(i) * vocab;
      } else {
        grow(discard, vocab);  // a logit row nobody asked for
        out = discard.data();
      }
      const int64_t one = count;
      pass(tokens.data() + token0 + done, std::span<const SeqId>(&seqs[i], 1),
           std::span<const int64_t>(&one, 1), out, last_only);
    }
    token0 += new_tokens[i];
  }
}

void DeepseekModel::forward(std::span<const int32_t> tokens, std::span<const SeqId> seqs,
                            std::span<const int64_t> new_tokens, std::span<float> logits) {
  impl_->step(tokens, seqs, new_tokens, logits, false);
}

void DeepseekModel::forward_last(std::span<const int32_t> tokens, std::span<const SeqId> seqs,
                                 std::span<const int64_t> new_tokens, std::span<float> logits) {
  impl_->step(tokens, seqs, new_tokens, logits, true);
}

}  // namespace mla
