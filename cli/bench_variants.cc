#include "bench_variants.h"

#include <algorithm>
#include <random>

#include "mla/dsa.h"
#include "mla/error.h"
#include "mla/gqa_layer.h"
#include "mla/layer.h"

namespace mla::cli {
namespace {

// Keys seen by `new_tokens` causal queries after `before` cached tokens: sum of before + t + 1.
double keys_seen(int64_t before, int64_t new_tokens) {
  const double t = static_cast<double>(new_tokens);
  return t * static_cast<double>(before) + t * (t + 1) / 2;
}

// mla-math.md, "Work and bytes": per token, the query projection, kv_a, and per key of each head
// the attention products; the absorbed form adds the absorption of q_nope and the value
// up-projection, the naive form expands each new latent through kv_b instead.
double mla_step_flops(const MlaConfig& c, AttentionPath path, int64_t before, int64_t tokens) {
  const double d = static_cast<double>(c.hidden_size), h = static_cast<double>(c.num_heads);
  const double dc = static_cast<double>(c.kv_lora_rank),
               dr = static_cast<double>(c.qk_rope_head_dim);
  const double dn = static_cast<double>(c.qk_nope_head_dim), dv = static_cast<double>(c.v_head_dim);
  const double dq = static_cast<double>(c.q_lora_rank);
  const double q = c.has_q_lora() ? 2 * d * dq + 2 * dq * h * (dn + dr) : 2 * d * h * (dn + dr);
  double per_token = q + 2 * d * (dc + dr) + 2 * h * dv * d;
  double per_key = 0;
  if (path == AttentionPath::kAbsorbed) {
    per_token += 2 * h * dn * dc + 2 * h * dc * dv;
    per_key = h * (2 * (dc + dr) + 2 * dc);
  } else {
    per_token += 2 * h * dc * (dn + dv);
    per_key = h * (2 * (dn + dr) + 2 * dv);
  }
  return static_cast<double>(tokens) * per_token + keys_seen(before, tokens) * per_key;
}

// DSA: the absorbed step with each query attending to min(k, visible) keys, plus the indexer:
// its projections per token and Hi * Di multiply-adds per visible key.
double sparse_step_flops(const MlaConfig& c, const DsaConfig& dsa, int64_t before, int64_t tokens) {
  const double h = static_cast<double>(c.num_heads), dc = static_cast<double>(c.kv_lora_rank),
               dr = static_cast<double>(c.qk_rope_head_dim);
  const double d = static_cast<double>(c.hidden_size), hi = static_cast<double>(dsa.num_heads),
               di = static_cast<double>(dsa.head_dim);
  const double q_in = static_cast<double>(c.has_q_lora() ? c.q_lora_rank : c.hidden_size);
  double attended = 0;
  for (int64_t t = 0; t < tokens; ++t)
    attended += static_cast<double>(std::min(before + t + 1, dsa.top_k));
  const double dense_tokens = mla_step_flops(c, AttentionPath::kAbsorbed, before, tokens) -
                              keys_seen(before, tokens) * h * (2 * (dc + dr) + 2 * dc);
  const double indexer = static_cast<double>(tokens) * (2 * q_in * hi * di + 2 * d * (di + hi)) +
                         keys_seen(before, tokens) * 2 * hi * di;
  return dense_tokens + attended * h * (2 * (dc + dr) + 2 * dc) + indexer;
}

// The index pool of a DSA variant kept in step with whatever pool the bench passes: a pool it
// has not seen (or that went back) gets a fresh index pool, and tokens the bench wrote straight
// into the cache get random index keys.
struct IndexPoolMirror {
  std::unique_ptr<PagedKvPool> index;
  std::mt19937_64 rng{3};
  void sync(const PagedKvPool& pool, std::span<const PagedKvPool::SeqId> seqs, int64_t width) {
    bool fresh = !index || index->page_size() != pool.page_size() ||
                 index->pages_total() < pool.pages_total();
    for (PagedKvPool::SeqId id : seqs) {
      if (!fresh && (!index->contains(id) || index->length(id) > pool.length(id))) fresh = true;
    }
    if (fresh) {
      index =
          std::make_unique<PagedKvPool>(width, pool.page_size(), pool.pages_total(), pool.dtype());
      PagedKvPool::SeqId top = 0;
      for (PagedKvPool::SeqId id : seqs) top = std::max(top, id);
      for (PagedKvPool::SeqId i = 0; i <= top; ++i) index->add_sequence();
    }
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(width));
    for (PagedKvPool::SeqId id : seqs) {
      const int64_t have = index->length(id), want = pool.length(id);
      if (have == want) continue;
      const std::vector<PagedKvPool::SeqId> one = {id};
      const std::vector<int64_t> count = {want - have};
      index->reserve(one, count);
      for (int64_t t = have; t < want; ++t) {
        for (float& v : row) v = normal(rng);
        convert_from_f32(row.data(), row.size(), index->dtype(), index->writable_row(id, t));
      }
      index->commit(id, want - have);
    }
  }
};

double gqa_step_flops(const GqaConfig& c, int64_t before, int64_t tokens) {
  const double d = static_cast<double>(c.hidden_size), h = static_cast<double>(c.num_heads);
  const double g = static_cast<double>(c.num_kv_heads), dh = static_cast<double>(c.head_dim);
  const double per_token = 2 * d * (h + 2 * g) * dh + 2 * h * dh * d;
  return static_cast<double>(tokens) * per_token + keys_seen(before, tokens) * h * 4 * dh;
}

// Bytes of the weights as the layer stores them: with bf16 weights the projections (q, kv_a,
// o_proj) take 2 bytes per number, kv_b and the norms stay float32.
int64_t mla_weight_bytes(const MlaConfig& c, DType weight_dtype) {
  const int64_t d = c.hidden_size, h = c.num_heads, r = c.kv_lora_rank;
  const int64_t q =
      c.has_q_lora() ? c.q_lora_rank * (d + h * c.qk_head_dim()) : d * h * c.qk_head_dim();
  const int64_t projections = q + d * c.latent_dim() + h * c.v_head_dim * d;
  const int64_t f32_numbers = c.q_lora_rank + r + h * (c.qk_nope_head_dim + c.v_head_dim) * r;
  return (weight_dtype == DType::kBF16 ? 2 : 4) * projections + 4 * f32_numbers;
}

}  // namespace

BenchVariant make_bench_variant(const std::string& name, const MlaConfig& config, uint64_t seed,
                                DType weight_dtype, int64_t sparse_top_k) {
  BenchVariant v;
  v.name = name;
  v.hidden_size = config.hidden_size;
  if (name == "mla-sparse") {
    DsaConfig dsa;  // DeepSeek-V3.2: 64 heads of 128
    dsa.top_k = sparse_top_k;
    dsa.validate(config);
    auto layer = std::make_shared<MlaLayer>(config, MlaWeights::random(config, seed), weight_dtype);
    layer->set_indexer(DsaIndexer(config, dsa, DsaWeights::random(config, dsa, seed + 1)));
    SparseSpec spec;
    spec.kind = SparseKind::kDsa;
    spec.top_k = sparse_top_k;
    layer->set_sparse(spec);
    auto mirror = std::make_shared<IndexPoolMirror>();
    v.weight_dtype = weight_dtype;
    v.weight_bytes = mla_weight_bytes(config, weight_dtype);
    v.token_width = layer->paged_token_width(AttentionPath::kAbsorbed);
    v.index_width = dsa.head_dim;
    v.step = [layer, mirror, width = dsa.head_dim](auto x, auto seqs, auto counts,
                                                   PagedKvPool& pool, auto y) {
      mirror->sync(pool, seqs, width);
      layer->forward(x, seqs, counts, pool, AttentionPath::kAbsorbed, y, *mirror->index);
    };
    v.flops = [config, dsa](int64_t before, int64_t tokens) {
      return sparse_step_flops(config, dsa, before, tokens);
    };
    v.layer = layer;
    return v;
  }
  if (name == "mla" || name == "mla-naive") {
    const AttentionPath path = name == "mla" ? AttentionPath::kAbsorbed : AttentionPath::kNaive;
    auto layer = std::make_shared<MlaLayer>(config, MlaWeights::random(config, seed), weight_dtype);
    v.weight_dtype = weight_dtype;
    v.weight_bytes = mla_weight_bytes(config, weight_dtype);
    v.token_width = layer->paged_token_width(path);
    v.step = [layer, path](auto x, auto seqs, auto counts, PagedKvPool& pool, auto y) {
      layer->forward(x, seqs, counts, pool, path, y);
    };
    v.flops = [config, path](int64_t before, int64_t tokens) {
      return mla_step_flops(config, path, before, tokens);
    };
    v.layer = layer;
    return v;
  }
  int64_t groups = 0;
  if (name == "mha") {
    groups = config.num_heads;
  } else if (name == "mqa") {
    groups = 1;
  } else if (name.rfind("gqa", 0) == 0 && name.size() > 3 &&
             name.find_first_not_of("0123456789", 3) == std::string::npos && name.size() < 9) {
    groups = std::stoll(name.substr(3));
  } else {
    throw Error("--variants: unknown variant '" + name +
                "' (use mla, mla-naive, mla-sparse, mha, gqa<N>, mqa)");
  }
  if (groups < 1 || config.num_heads % groups != 0) {
    throw Error("--variants: " + name + ": " + std::to_string(groups) + " groups do not divide " +
                std::to_string(config.num_heads) + " heads");
  }
  const GqaConfig gc = GqaConfig::like_mla(config, groups);
  auto layer = std::make_shared<GqaLayer>(gc, GqaWeights::random(gc, seed));
  v.token_width = layer->paged_token_width();
  v.step = [layer](auto x, auto seqs, auto counts, PagedKvPool& pool, auto y) {
    layer->forward(x, seqs, counts, pool, y);
  };
  v.weight_bytes = 4 * gc.hidden_size * gc.head_dim * 2 * (gc.num_heads + gc.num_kv_heads);
  v.flops = [gc](int64_t before, int64_t tokens) { return gqa_step_flops(gc, before, tokens); };
  v.layer = layer;
  return v;
}

}  // namespace mla::cli
