// A decoder-only language model for training: token embedding, L pre-norm blocks
//   x += dropout(attention(norm1(x)));  x += dropout(ffn(norm2(x)))
// a final norm and an output head (tied to the embedding or separate). Attention is MLA (any
// MlaConfig: query compression or not, any rotary width including 0) in its naive form, or
// MHA / GQA / MQA with the weight layout of mla::GqaLayer; the feed-forward is SwiGLU or GELU.
// Legend: B batch, S tokens per sequence, N = B*S, d model width, V vocabulary, F ffn width.
//
// Parameters live in ONE buffer described by a list of named tensors (llm.c's
// malloc_and_point_parameters plus a visitor list): gradients and AdamW moments share the layout,
// so zero_grad, gradient clipping and the optimiser are flat loops, and load/save never list
// tensors by hand. Tensor names follow Hugging Face ("model.layers.0.self_attn.kv_b_proj.weight"),
// and the MLA tensors are exactly mla::MlaWeights', so a trained model serves inference through
// mla::MlaLayer and its latent cache.
//
// LmModelT is a template on the element type: float trains; double exists so that the gradient
// checks run the very same code in double precision against finite differences.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mla/config.h"
#include "mla/gqa_layer.h"
#include "mla/sparse.h"

namespace mla {

enum class AttentionKind { kMla, kMha, kGqa, kMqa };
enum class FfnKind { kSwiGlu, kGelu };
enum class NormKind { kRmsNorm, kLayerNorm };
inline constexpr EnumName<AttentionKind> kAttentionKindNames[] = {{AttentionKind::kMla, "mla"},
                                                                  {AttentionKind::kMha, "mha"},
                                                                  {AttentionKind::kGqa, "gqa"},
                                                                  {AttentionKind::kMqa, "mqa"}};
inline constexpr EnumName<FfnKind> kFfnKindNames[] = {{FfnKind::kSwiGlu, "swiglu"},
                                                      {FfnKind::kGelu, "gelu"}};
inline constexpr EnumName<NormKind> kNormKindNames[] = {{NormKind::kRmsNorm, "rmsnorm"},
                                                        {NormKind::kLayerNorm, "layernorm"}};
constexpr std::span<const EnumName<AttentionKind>> enum_names(AttentionKind) {
  return kAttentionKindNames;
}
constexpr std::span<const EnumName<FfnKind>> enum_names(FfnKind) {
  return kFfnKindNames;
}
constexpr std::span<const EnumName<NormKind>> enum_names(NormKind) {
  return kNormKindNames;
}

const char* attention_kind_name(AttentionKind kind);          // "mla", "mha", "gqa", "mqa"
AttentionKind parse_attention_kind(const std::string& name);  // throws naming the choices

// The choices a model's knobs (LmShape) and its full config (LmConfig) share, declared once.
struct LmChoices {
  int64_t vocab_size = 256;   // V: bytes
  int64_t max_seq_len = 128;  // longest sequence the model is trained on
  int64_t d_model = 128;      // d
  int64_t num_layers = 2;
  AttentionKind attention = AttentionKind::kMla;
  FfnKind ffn = FfnKind::kSwiGlu;
  NormKind norm = NormKind::kRmsNorm;
  bool tied_embeddings = true;
  double dropout = 0.0;  // residual dropout (attention and ffn outputs), training only
  // Sparse attention (MLA only; window, block or topk, optionally with dense heads) in layers
  // dense_layers .. num_layers - 1; the first dense_layers layers stay dense (a hybrid of
  // layers). Training and generation use the same pattern.
  SparseSpec sparse;
  int64_t dense_layers = 0;
  // MLA layers train in the naive form (per-head K/V, the default) or the absorbed one (W_UK
  // folded into the queries, attention over the latent rows); same function, other products.
  bool absorbed = false;

  // The scalar choices with their rules; sparse and dense_layers are checked with the attention
  // they go with (LmConfig::validate).
  template <class V>
  void visit_fields(V& v) {
    v("vocab_size", vocab_size, {.min = 1, .max = 1 << 20});
    v("max_seq_len", max_seq_len, {.min = 1, .max = 1 << 16});
    v("d_model", d_model, {.min = 1, .max = 1 << 16});
    v("num_layers", num_layers, {.min = 1, .max = 1024});
    v("attention", attention);
    v("ffn", ffn);
    v("norm", norm);
    v("tied_embeddings", tied_embeddings);
    v("dropout", dropout, {.min = 0, .max = 1, .max_open = true});
    v("dense_layers", dense_layers);
    v("absorbed", absorbed);
  }
  bool operator==(const LmChoices&) const = default;
};

struct LmConfig : LmChoices {
  MlaConfig mla;           // attention == kMla; mla.hidden_size == d_model
  GqaConfig gqa;           // otherwise; gqa.hidden_size == d_model (MHA: G = H, MQA: G = 1)
  int64_t ffn_hidden = 0;  // F
  double norm_eps = 1e-5;

  // LmChoices' fields, then the config's own; mla and gqa validate themselves.
  template <class V>
  void visit_fields(V& v) {
    LmChoices::visit_fields(v);
    v("ffn_hidden", ffn_hidden, {.min = 1, .max = 1 << 20});
    v("norm_eps", norm_eps, {.min = 0, .min_open = true});
  }
  bool operator==(const LmConfig&) const = default;
  SparseSpec layer_sparse(int64_t layer) const {
    return layer < dense_layers ? SparseSpec{} : sparse;
  }

  // Throws mla::Error "lm config: <field>: <reason>".
  void validate() const;
  // Numbers one token keeps in one layer's inference cache: R + Dr for MLA, 2 G Dh otherwise.
  int64_t cache_numbers_per_token() const;
};

// The knobs from which a whole config is derived (the CLI flags and presets). Zero (or -1 for
// rope_dim) means "derive": head width Dh = d / heads; MLA: Dn = Dv = Dh, Dr = Dh / 2 rounded to
// even, R = d / 2, no query compression; MHA/GQA/MQA: rope on the whole head, GQA groups =
// heads / 2; SwiGLU F = 8d/3 rounded up to a multiple of 8 (same parameters as GELU's 4d).
struct LmShape : LmChoices {
  int64_t heads = 4;
  int64_t kv_heads = 0;      // GQA groups
  int64_t head_dim = 0;      // Dh (MLA: Dn and Dv)
  int64_t kv_lora_rank = 0;  // MLA R
  int64_t q_lora_rank = 0;   // MLA Rq (0: none)
  int64_t rope_dim = -1;     // MLA Dr / rotated entries per head; 0 = no RoPE
  double rope_theta = 10000.0;
  int64_t ffn_hidden = 0;  // F; 0 derives it
};

LmConfig lm_config_from_shape(const LmShape& shape);
// Named shapes: "tiny" (d 64, 2 layers), "small" (d 128, 4 layers), "medium" (d 256, 6 layers).
LmShape lm_preset_shape(const std::string& name);
std::vector<std::string> lm_preset_names();

// JSON: {"vocab_size", "max_seq_len", "d_model", "num_layers", "attention", "ffn", "ffn_hidden",
// "norm", "norm_eps", "tied_embeddings", "dropout", "sparse" (SparseSpec::to_string, when not
// dense), "dense_layers", "mla_form" ("naive" or "absorbed"), "mla": {config.json fields},
// "gqa": {...}}.
// Parsing also accepts a partial file: missing fields are derived as lm_config_from_shape does
// (with "heads", "kv_heads", "head_dim", "kv_lora_rank", "q_lora_rank", "rope_dim" as knobs).
std::string lm_config_to_json(const LmConfig& config);
LmConfig parse_lm_config_json(const std::string& text, const std::string& source);
LmConfig load_lm_config(const std::string& path);

// One named tensor of the parameter buffer.
struct ParamTensor {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // into the flat buffer
  int64_t numel = 0;
  bool decay = false;  // AdamW weight decay: matrices yes; norms and biases no
};

// The parameter list of a config, in buffer order.
std::vector<ParamTensor> lm_parameter_list(const LmConfig& config);

namespace detail {
template <typename T>
struct LmState;
}

template <typename T>
class LmModelT {
 public:
  explicit LmModelT(const LmConfig& config);  // validates; parameters and gradients zero
  ~LmModelT();
  LmModelT(LmModelT&&) noexcept;
  LmModelT& operator=(LmModelT&&) noexcept;

  const LmConfig& config() const { return config_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  const ParamTensor& tensor(const std::string& name) const;  // throws naming the tensor
  int64_t num_parameters() const { return static_cast<int64_t>(params_.size()); }
  std::span<T> params() { return params_; }
  std::span<const T> params() const { return params_; }
  std::span<T> grads() { return grads_; }
  std::span<const T> grads() const { return grads_; }

  // GPT-2 style: matrices N(0, 0.02), the residual projections (o_proj, down_proj) scaled by
  // 1/sqrt(2L), norm gains 1, biases 0. Deterministic in the seed.
  void init_random(uint64_t seed);

  // tokens and targets are (B, S); a target < 0 is not scored (targets may be empty: logits
  // only, loss 0). Keeps the activations for backward. training = apply dropout with masks keyed
  // by dropout_key. Returns the mean loss over scored targets. Throws mla::Error on a token or
  // target outside [0, V) or a size mismatch. Any S >= 1 works (rotary tables grow to S); S up
  // to max_seq_len is what the model was trained for.
  double forward(std::span<const int32_t> tokens, std::span<const int32_t> targets, int64_t batch,
                 int64_t seq, bool training = false, uint64_t dropout_key = 0);
  // Accumulates d(mean loss)/d(parameters) into grads(), for the last forward (which needs
  // targets).
  void backward();
  void zero_grad();

  std::span<const T> logits() const;  // (B, S, V) of the last forward

 private:
  LmConfig config_;
  std::vector<ParamTensor> tensors_;
  std::vector<T> params_, grads_;
  std::unique_ptr<detail::LmState<T>> state_;
};

using LmModel = LmModelT<float>;

}  // namespace mla
