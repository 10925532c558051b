#include "bench_variants.h"

#include "mla/baseline.h"
#include "mla/error.h"
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
                                DType weight_dtype) {
  BenchVariant v;
  v.name = name;
  v.hidden_size = config.hidden_size;
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
                "' (use mla, mla-naive, mha, gqa<N>, mqa)");
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
