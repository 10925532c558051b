// A whole DeepSeek-V2 / V3 / V3.2 (and Kimi K2) causal language model from a Hugging Face
// checkpoint folder: token embedding, pre-norm blocks of MLA attention (mla::MlaLayer, absorbed
// over a paged latent cache) and a dense SwiGLU MLP or DeepSeekMoE (router, routed experts,
// shared experts), a final RMSNorm and the LM head. docs/models.md has the math and the commands.
// Legend: d hidden, V vocab, E routed experts, k experts per token, m expert width, n tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/dsa.h"
#include "mla/dtype.h"
#include "mla/fields.h"
#include "mla/paged_cache.h"

namespace mla {

enum class ScoringFunc { kSoftmax, kSigmoid };
inline constexpr EnumName<ScoringFunc> kScoringFuncNames[] = {{ScoringFunc::kSoftmax, "softmax"},
                                                              {ScoringFunc::kSigmoid, "sigmoid"}};
constexpr std::span<const EnumName<ScoringFunc>> enum_names(ScoringFunc) {
  return kScoringFuncNames;
}

enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };
inline constexpr EnumName<TopkMethod> kTopkMethodNames[] = {
    {TopkMethod::kGreedy, "greedy"},
    {TopkMethod::kGroupLimitedGreedy, "group_limited_greedy"},
    {TopkMethod::kNoauxTc, "noaux_tc"}};
constexpr std::span<const EnumName<TopkMethod>> enum_names(TopkMethod) {
  return kTopkMethodNames;
}

// How one MoE layer chooses experts for a token (deepseek-model.md, "Router").
struct RouterConfig {
  int64_t num_experts = 0;  // E (n_routed_experts)
  int64_t top_k = 0;        // k (num_experts_per_tok)
  ScoringFunc scoring = ScoringFunc::kSoftmax;
  TopkMethod method = TopkMethod::kGreedy;
  int64_t n_group = 1, topk_group = 1;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  bool has_bias() const { return method == TopkMethod::kNoauxTc; }  // e_score_correction_bias

  // Under their config.json names, which are flat: DeepseekConfig lists these inline. Each rule
  // reads num_experts when its field is visited, after a reader has set it, since the fields
  // after it count only with routed experts. Ranges bounded by other fields: DeepseekConfig's
  // validate.
  template <class V>
  void visit_fields(V& v) {
    v("n_routed_experts", num_experts, {.min = 0, .max = 65536, .between = true});
    v("num_experts_per_tok", top_k, {.required = num_experts > 0, .active = num_experts > 0});
    v("scoring_func", scoring, {.active = num_experts > 0});
    v("topk_method", method, {.active = num_experts > 0});
    v("n_group", n_group, {.active = num_experts > 0});
    v("topk_group", topk_group, {.active = num_experts > 0});
    v("norm_topk_prob", norm_topk_prob, {.active = num_experts > 0});
    v("routed_scaling_factor", routed_scaling_factor,
      {.min = 0, .min_open = true, .active = num_experts > 0});
  }
  bool operator==(const RouterConfig&) const = default;
};

// Chooses k experts for each of n tokens from the gate logits (n, E): scores by softmax or
// sigmoid, selection on scores + bias (bias may be null; only with noaux_tc), groups limited to
// the topk_group best (group score: max, or with a bias the sum of the two largest), the k
// largest selection scores in descending order; weights are the original scores, renormalised
// when norm_topk_prob, times routed_scaling_factor. experts and weights are (n, k). Ties break
// towards the lower expert index. scratch needs 2 E floats.
void route_tokens(const RouterConfig& cfg, const float* logits, const float* bias, int64_t n,
                  int32_t* experts, float* weights, float* scratch);

struct DeepseekConfig {
  std::string architecture;  // "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", ...V32...
  std::string model_type;    // "deepseek_v2", "deepseek_v3", "kimi_k2", ...
  MlaConfig attention;       // every layer's MLA shape
  int64_t vocab_size = 0;
  int64_t num_layers = 0;  // decoder layers (num_hidden_layers; MTP layers not counted)
  int64_t intermediate_size = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t n_shared_experts = 0;
  RouterConfig router;  // n_routed_experts == 0: every layer dense
  int64_t num_nextn_predict_layers = 0;
  bool tie_word_embeddings = false;
  bool dsa = false;  // DeepseekV32ForCausalLM: the lightning indexer in every layer
  DsaConfig dsa_config;
  int64_t bos_token_id = -1, eos_token_id = -1;

  bool is_moe_layer(int64_t layer) const {
    return router.num_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }

  // The whole-model keys of config.json, once: the list behind parse_deepseek_config (an absent
  // key keeps the default its architecture gives), validate(), deepseek_config_to_json and
  // to_string(). Not listed: the architecture (it picks the defaults, so it is read first) and
  // `attention`, which is MlaConfig's own list over the same top-level keys.
  template <class V>
  void visit_fields(V& v) {
    constexpr double kMaxWidth = 1 << 20;
    const auto count = [](double max) {  // a required count from 1 to max
      return FieldRule{.min = 1, .max = max, .required = true, .between = true};
    };
    v("model_type", model_type);
    v("vocab_size", vocab_size, count(1 << 24));
    v("num_hidden_layers", num_layers, count(4096));
    v("intermediate_size", intermediate_size, count(kMaxWidth));
    router.visit_fields(v);
    v("moe_intermediate_size", moe_intermediate_size,
      {.min = 1,
       .max = kMaxWidth,
       .required = router.num_experts > 0,
       .active = router.num_experts > 0,
       .between = true});
    v("n_shared_experts", n_shared_experts,
      {.min = 0, .max = 64, .active = router.num_experts > 0, .between = true});
    v("first_k_dense_replace", first_k_dense_replace);  // 0..num_hidden_layers: validate
    v("moe_layer_freq", moe_layer_freq, {.min = 1, .max = 4096, .between = true});
    v("num_nextn_predict_layers", num_nextn_predict_layers, {.min = 0, .max = 64, .between = true});
    v("tie_word_embeddings", tie_word_embeddings);
    v("bos_token_id", bos_token_id);
    v("eos_token_id", eos_token_id);
    // V3.2's indexer under its config.json names; DsaConfig::validate holds the rules.
    v("index_n_heads", dsa_config.num_heads, {.required = dsa, .active = dsa});
    v("index_head_dim", dsa_config.head_dim, {.required = dsa, .active = dsa});
    v("index_topk", dsa_config.top_k, {.required = dsa, .active = dsa});
  }
  bool operator==(const DeepseekConfig&) const = default;

  // Throws mla::Error "<source>: <field>: <reason>".
  void validate(const std::string& source = "config") const;
  std::string to_string() const;  // "architecture: ...", the listed fields, then "attention."
};

// Parses config.json of a whole model; throws "<source>: architectures: ..." for an unknown
// architecture, "<source>: <field>: ..." for a missing or inconsistent field.
DeepseekConfig parse_deepseek_config(const std::string& text, const std::string& source);
DeepseekConfig load_deepseek_config(const std::string& path);
// config.json of the model (attention keys included); round-trips through parse_deepseek_config.
std::string deepseek_config_to_json(const DeepseekConfig& config);
// Whether the config.json text names an architecture (whole model) rather than one layer.
bool is_whole_model_config_json(const std::string& text);

// "deepseek-v2-lite-model" (the V2-Lite shape with `layers` decoder layers), "tiny-moe-model".
DeepseekConfig model_preset(const std::string& name, int64_t layers);

// Sizes from the config alone (mla info, the benches' memory floor).
struct ModelCounts {
  int64_t dense_layers = 0, moe_layers = 0;
  int64_t parameters = 0;         // decoder layers, embedding, norm, head (MTP not counted)
  int64_t active_parameters = 0;  // per token: attention, dense MLP, shared + k routed experts,
                                  // gate, norms, head (the embedding row is a lookup, not counted)
  int64_t cache_numbers_per_token = 0;         // all layers (latent + DSA index key)
  int64_t attention_parameters_per_layer = 0;  // MLA projections and norms (+ DSA indexer)
};
ModelCounts count_model(const DeepseekConfig& config);

// Token ids for `mla forward`: a safetensors file with an I32 or I64 tensor `tokens`
// [batch, seq]. Throws "<path>: <reason>" for anything else (other dtypes, ranks, truncation).
struct TokenBatch {
  int64_t batch = 0, seq = 0;
  std::vector<int32_t> ids;  // (batch, seq)
};
TokenBatch read_token_file(const std::string& path);

class DeepseekModel {
 public:
  using SeqId = PagedKvPool::SeqId;
  struct Options {
    // kF32 computes with float32 weights (exact: other dtypes are widened at load); kBF16
    // multiplies bf16 weights: a bf16 checkpoint's embedding, expert, MLP and head matrices and
    // an FP8 checkpoint's expert and MLP matrices (with their block scales) are used in place
    // from the mapping, never copied; the attention projections are MlaLayer's bf16 copies.
    DType weight_dtype = DType::kBF16;
    // Quantizes the dense MLP, expert and LM head matrices to int8 with one scale per row at
    // load (attention stays in weight_dtype, the embedding and router as they are).
    bool int8 = false;
    // The latent cache's rows. Unset: float32 under F32 weights, bf16 otherwise. F8_E4M3 or I8:
    // DeepSeek-V3.2's quantized rows (mla/quantized_row.h: 656 bytes a token and layer for
    // R = 512, Dr = 64), not with DSA (V3.2's sparse kernels read float rows).
    std::optional<DType> cache_dtype;
    int64_t cache_tokens = 4096;  // latent cache capacity, all sequences together
    int64_t page_size = 64;
    int64_t prefill_chunk = 256;  // tokens of one sequence per layer pass (bounds memory)
  };

  // Opens DIR/config.json and the safetensors there. Errors name the tensor or field.
  static DeepseekModel load(const std::string& dir, const Options& options);
  // Deterministic random weights of the config's shapes (benchmarks, tests).
  static DeepseekModel random(const DeepseekConfig& config, uint64_t seed, const Options& options);

  DeepseekModel(DeepseekModel&&) noexcept;
  DeepseekModel& operator=(DeepseekModel&&) noexcept;
  ~DeepseekModel();

  const DeepseekConfig& config() const;
  DType weight_dtype() const;
  DType cache_dtype() const;
  int64_t cache_bytes_per_token() const;  // one token's rows in every layer's pools
  bool int8() const;
  // Weight bytes held in memory or mapped (attention counted at the compute dtype's width), and
  // the bytes of the cache pages in use.
  int64_t weight_bytes() const;
  int64_t cache_bytes() const;

  SeqId add_sequence();
  void remove_sequence(SeqId seq);
  int64_t length(SeqId seq) const;
  // Prefix sharing (mla serve): a fork shares the parent's cache pages in every layer, copying a
  // page only when it writes into a shared one; truncate drops tokens past `length`.
  SeqId fork_sequence(SeqId parent);
  void truncate_sequence(SeqId seq, int64_t length);
  // The latent cache in pages of page_size tokens (every layer's pool has the same pages).
  int64_t page_size() const;
  int64_t pages_total() const;
  int64_t pages_free() const;

  // One batched step: sequence seqs[i] gets new_tokens[i] >= 1 tokens (a prefill, a chunk or
  // one decode token), packed in `tokens` in the order of seqs. logits is (sum new_tokens, V).
  // Token ids outside [0, V) and a full cache throw before anything is written.
  void forward(std::span<const int32_t> tokens, std::span<const SeqId> seqs,
               std::span<const int64_t> new_tokens, std::span<float> logits);
  // The same with logits only for the last new token of each sequence: (seqs.size(), V).
  void forward_last(std::span<const int32_t> tokens, std::span<const SeqId> seqs,
                    std::span<const int64_t> new_tokens, std::span<float> logits);

  struct Impl;

 private:
  explicit DeepseekModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mla
