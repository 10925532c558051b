// Backward of the training layers (MLA naive form, MHA/GQA/MQA, SwiGLU/GELU feed-forward) and of
// the whole language model, against 4-point finite differences in double precision. The model
// check covers every parameter tensor (a sample of entries per tensor) for every attention kind,
// both norms, tied and separate heads, with dropout on. Tolerance 1e-7 relative.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "mla/model_lm.h"
#include "mla/weights.h"
#include "train/ffn_block.h"
#include "train/gqa_block.h"
#include "train/grad_check.h"
#include "train/mla_block.h"

namespace mla::train {
namespace {

constexpr double kTol = 1e-7;

// Named double tensors with their gradients; pointers into them are bound to the block structs.
struct Tensors {
  std::map<std::string, std::vector<double>> value, grad;
  double* v(const std::string& name) { return value.count(name) ? value[name].data() : nullptr; }
  double* g(const std::string& name) { return grad.count(name) ? grad[name].data() : nullptr; }
  void add(const std::string& name, int64_t numel, uint64_t seed, double scale,
           double shift = 0.0) {
    value[name] = random_doubles(static_cast<size_t>(numel), seed, scale);
    for (double& x : value[name]) x += shift;
    grad[name].assign(static_cast<size_t>(numel), 0.0);
  }
};

template <typename Fwd, typename Bwd>
void check_block(const std::string& what, Tensors& t, int64_t n, int64_t d, Fwd forward,
                 Bwd backward) {
  auto x = random_doubles(n * d, 100), r = random_doubles(n * d, 101);
  std::vector<double> out(n * d);
  auto loss = [&] {
    forward(out.data(), x.data());
    return dot(out, r, out.size());
  };
  loss();
  std::vector<double> dx(x.size(), 0.0);
  backward(dx.data(), r.data(), x.data());
  const double ex = gradient_error(x, dx, loss);
  std::printf("[grad] %-28s %-28s %.2e\n", what.c_str(), "x", ex);
  EXPECT_LT(ex, kTol) << what << " x";
  for (auto& [name, value] : t.value) {
    const double e = gradient_error(value, t.grad[name], loss);
    std::printf("[grad] %-28s %-28s %.2e\n", what.c_str(), name.c_str(), e);
    EXPECT_LT(e, kTol) << what << " " << name;
  }
}

MlaConfig mla_variant(int64_t q_lora, int64_t dr, bool yarn) {
  MlaConfig c;
  c.hidden_size = 12;
  c.num_heads = 3;
  c.q_lora_rank = q_lora;
  c.kv_lora_rank = 6;
  c.qk_nope_head_dim = 4;
  c.qk_rope_head_dim = dr;
  c.v_head_dim = 5;  // != Dn: the value slice of kv_b must be addressed on its own
  c.max_position_embeddings = 64;
  if (yarn) {
    c.rope_scaling.type = RopeScalingType::kYarn;
    c.rope_scaling.factor = 40.0;
    c.rope_scaling.original_max_position_embeddings = 8;
    c.rope_scaling.mscale = 0.707;
    c.rope_scaling.mscale_all_dim = 0.707;
  }
  c.validate();
  return c;
}

TEST(TrainGradLayers, MlaNaiveBlock) {
  struct Case {
    const char* name;
    MlaConfig config;
  };
  for (const Case& cs : {Case{"mla q_lora", mla_variant(5, 4, false)},
                         Case{"mla no q_lora", mla_variant(0, 4, false)},
                         Case{"mla ropeless", mla_variant(5, 0, false)},
                         Case{"mla yarn", mla_variant(0, 6, true)}}) {
    const MlaConfig& c = cs.config;
    Tensors t;
    uint64_t seed = 200;
    MlaWeights names;
    names.for_each_tensor(c, [&](const std::string& name, const std::vector<int64_t>& shape,
                                 std::vector<float>&) {
      if (shape.size() == 1) {
        t.add(name, shape[0], ++seed, 0.2, 1.0);
      } else {
        t.add(name, shape[0] * shape[1], ++seed, 1.0 / std::sqrt(static_cast<double>(shape[1])));
      }
    });
    auto bind = [&](bool grads) {
      MlaTensors<double> w;
      w.for_each_tensor(c, [&](const std::string& name, const std::vector<int64_t>&,
                               double*& slot) { slot = grads ? t.g(name) : t.v(name); });
      return w;
    };
    MlaBlock<double> block(c);
    typename MlaBlock<double>::Scratch scratch;
    const int64_t b = 2, s = 4;
    check_block(
        cs.name, t, b * s, c.hidden_size,
        [&](double* out, const double* x) { block.forward(out, x, bind(false), b, s); },
        [&](double* dx, const double* dout, const double* x) {
          block.backward(dx, bind(true), dout, x, bind(false), scratch);
        });
  }
}

TEST(TrainGradLayers, GqaBlocks) {
  for (int64_t kv_heads : {4, 2, 1}) {
    GqaConfig c;
    c.hidden_size = 10;
    c.num_heads = 4;
    c.num_kv_heads = kv_heads;
    c.head_dim = 6;
    c.rope_dim = 4;  // RoPE on part of the head
    Tensors t;
    t.add("q_proj.weight", 24 * 10, 300, 0.3);
    t.add("k_proj.weight", kv_heads * 6 * 10, 301, 0.3);
    t.add("v_proj.weight", kv_heads * 6 * 10, 302, 0.3);
    t.add("o_proj.weight", 10 * 24, 303, 0.2);
    auto bind = [&](bool grads) {
      GqaTensors<double> w;
      w.for_each_tensor(c, [&](const std::string& name, const std::vector<int64_t>&,
                               double*& slot) { slot = grads ? t.g(name) : t.v(name); });
      return w;
    };
    GqaBlock<double> block(c);
    typename GqaBlock<double>::Scratch scratch;
    const int64_t b = 2, s = 5;
    const std::string name = kv_heads == 4 ? "mha" : kv_heads == 1 ? "mqa" : "gqa";
    check_block(
        name, t, b * s, 10,
        [&](double* out, const double* x) { block.forward(out, x, bind(false), b, s); },
        [&](double* dx, const double* dout, const double* x) {
          block.backward(dx, bind(true), dout, x, bind(false), scratch);
        });
  }
}

TEST(TrainGradLayers, FeedForward) {
  for (FfnKind kind : {FfnKind::kSwiGlu, FfnKind::kGelu}) {
    const int64_t n = 6, d = 5, f = 7;
    Tensors t;
    if (kind == FfnKind::kSwiGlu) t.add("mlp.gate_proj.weight", f * d, 400, 0.6);
    t.add("mlp.up_proj.weight", f * d, 401, 0.6);
    t.add("mlp.down_proj.weight", d * f, 402, 0.4);
    LmConfig shape;
    shape.ffn = kind;
    shape.d_model = d;
    shape.ffn_hidden = f;
    auto bind = [&](bool grads) {
      FfnTensors<double> w;
      w.for_each_tensor(shape, [&](const std::string& name, const std::vector<int64_t>&,
                                   double*& slot) { slot = grads ? t.g(name) : t.v(name); });
      return w;
    };
    FfnBlock<double> block(kind, d, f);
    typename FfnBlock<double>::Scratch scratch;
    check_block(
        kind == FfnKind::kSwiGlu ? "ffn swiglu" : "ffn gelu", t, n, d,
        [&](double* out, const double* x) { block.forward(out, x, bind(false), n); },
        [&](double* dx, const double* dout, const double* x) {
          block.backward(dx, bind(true), dout, x, bind(false), scratch);
        });
  }
}

struct ModelCase {
  const char* name;
  LmShape shape;
};

std::vector<ModelCase> model_cases() {
  auto shape = [](AttentionKind a, FfnKind f, NormKind n, bool tied, double dropout, int64_t q_lora,
                  int64_t rope) {
    LmShape s;
    s.attention = a;
    s.d_model = 12;
    s.num_layers = 2;
    s.heads = 3;
    s.kv_heads = 1;
    s.head_dim = 4;
    s.kv_lora_rank = 6;
    s.q_lora_rank = q_lora;
    s.rope_dim = rope;
    s.ffn = f;
    s.ffn_hidden = 10;
    s.norm = n;
    s.tied_embeddings = tied;
    s.dropout = dropout;
    s.vocab_size = 11;
    s.max_seq_len = 6;
    return s;
  };
  using A = AttentionKind;
  return {{"mla swiglu rms tied",
           shape(A::kMla, FfnKind::kSwiGlu, NormKind::kRmsNorm, true, 0.0, 5, 2)},
          {"mla ropeless gelu ln untied dropout",
           shape(A::kMla, FfnKind::kGelu, NormKind::kLayerNorm, false, 0.2, 0, 0)},
          {"mha swiglu rms untied",
           shape(A::kMha, FfnKind::kSwiGlu, NormKind::kRmsNorm, false, 0.0, 0, -1)},
          {"gqa gelu ln tied dropout",
           shape(A::kGqa, FfnKind::kGelu, NormKind::kLayerNorm, true, 0.1, 0, 2)},
          {"mqa swiglu rms tied",
           shape(A::kMqa, FfnKind::kSwiGlu, NormKind::kRmsNorm, true, 0.0, 0, -1)}};
}

TEST(TrainGradLayers, WholeModelEveryTensor) {
  for (const ModelCase& mc : model_cases()) {
    LmShape shape = mc.shape;
    if (shape.attention == AttentionKind::kGqa) shape.kv_heads = 3;  // groups of 1 would be MHA
    const LmConfig config = lm_config_from_shape(shape);
    LmModelT<double> model(config);
    model.init_random(7);
    // Larger than the 0.02 init so that every path carries a gradient well above rounding.
    auto p = model.params();
    auto noise = random_doubles(p.size(), 8, 0.3);
    for (size_t i = 0; i < p.size(); ++i) p[i] += noise[i];
    const int64_t b = 2, s = 5;
    const std::vector<int32_t> tokens = {1, 4, 2, 9, 0, 3, 3, 10, 5, 7};
    const std::vector<int32_t> targets = {4, 2, -1, 0, 3, 3, 10, 5, -1, 1};
    const uint64_t key = 99;
    model.zero_grad();
    model.forward(tokens, targets, b, s, /*training=*/true, key);
    model.backward();
    std::vector<double> params(p.begin(), p.end());
    auto loss = [&] {
      std::copy(params.begin(), params.end(), model.params().begin());
      return model.forward(tokens, targets, b, s, true, key);
    };
    const std::vector<double> grads(model.grads().begin(), model.grads().end());
    double worst = 0.0;
    for (const ParamTensor& t : model.tensors()) {
      std::vector<double> value(params.begin() + t.offset, params.begin() + t.offset + t.numel);
      const std::vector<double> g(grads.begin() + t.offset, grads.begin() + t.offset + t.numel);
      auto tensor_loss = [&] {
        std::copy(value.begin(), value.end(), params.begin() + t.offset);
        return loss();
      };
      const double e = gradient_error(value, g, tensor_loss, 12);
      std::copy(value.begin(), value.end(), params.begin() + t.offset);
      worst = std::max(worst, e);
      EXPECT_LT(e, kTol) << mc.name << ": " << t.name;
    }
    std::printf("[grad] model %-36s %3zu tensors, worst %.2e\n", mc.name, model.tensors().size(),
                worst);
  }
}

TEST(TrainGradLayers, GradientsAccumulate) {
  const LmConfig config = lm_config_from_shape(model_cases()[0].shape);
  LmModelT<double> model(config);
  model.init_random(3);
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6}, targets = {2, 3, 4, 5, 6, 7};
  model.zero_grad();
  model.forward(tokens, targets, 1, 6);
  model.backward();
  const std::vector<double> once(model.grads().begin(), model.grads().end());
  model.forward(tokens, targets, 1, 6);
  model.backward();
  for (size_t i = 0; i < once.size(); ++i)
    ASSERT_NEAR(model.grads()[i], 2 * once[i], 1e-14 + 1e-12 * std::fabs(once[i]));
  model.zero_grad();
  for (double g : model.grads()) ASSERT_EQ(g, 0.0);
}

}  // namespace
}  // namespace mla::train
