// The whole language model (float32, oneDNN) against torch.autograd in float64: loss, the
// gradient of EVERY parameter, then five training steps (gradient clipping, warm-up/cosine
// learning rate, torch.optim.AdamW with decoupled weight decay) compared step by step.
// tests/reference/train_reference.py rebuilds the model from the safetensors fixture written
// here (parameters by name, tokens, targets, config JSON) and writes its results back. Skipped
// when /usr/bin/python3 has no torch. Measured errors are printed as "[torch]" lines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "mla/model_lm.h"
#include "mla/safetensors.h"
#include "mla/train_optim.h"

namespace mla {
namespace {

constexpr const char* kPython = "/usr/bin/python3";
constexpr double kLossTol = 1e-6;  // relative, float32 vs float64
constexpr double kGradTol = 1e-4;  // max |g - g_ref| / max |g_ref| per tensor
// After the AdamW steps: max |p - p_ref| / (sum of the learning rates), i.e. as a fraction of the
// largest distance Adam can move a parameter. Adam normalises each gradient by its own RMS, so a
// near-zero gradient whose float32 rounding differs can move by up to +-lr in either code; the
// bound says every parameter ends within 0.5% of that range of torch's.
constexpr double kParamTol = 5e-3;

bool torch_available() {
  static const bool ok =
      std::system((std::string(kPython) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  return ok;
}

double max_abs(std::span<const float> a, const std::vector<float>& ref) {
  double diff = 0.0;
  for (size_t i = 0; i < ref.size(); ++i)
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - ref[i]));
  return diff;
}

double max_rel(std::span<const float> a, const std::vector<float>& ref) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - ref[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  }
  return diff / std::max(scale, 1e-30);
}

struct Case {
  const char* name;
  LmShape shape;
};

LmShape base_shape(AttentionKind attention) {
  LmShape s;
  s.attention = attention;
  s.d_model = 32;
  s.num_layers = 2;
  s.heads = 4;
  s.vocab_size = 40;
  s.max_seq_len = 8;
  return s;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  LmShape mla = base_shape(AttentionKind::kMla);
  mla.q_lora_rank = 12;  // query compression, RoPE on Dr = 4, SwiGLU, RMSNorm, tied
  out.push_back({"mla q_lora rope swiglu rmsnorm tied", mla});
  LmShape ropeless = base_shape(AttentionKind::kMla);
  ropeless.rope_dim = 0;
  ropeless.ffn = FfnKind::kGelu;
  ropeless.norm = NormKind::kLayerNorm;
  ropeless.tied_embeddings = false;
  out.push_back({"mla ropeless gelu layernorm untied", ropeless});
  LmShape gqa = base_shape(AttentionKind::kGqa);
  gqa.kv_heads = 2;
  gqa.rope_dim = 4;  // RoPE on part of each head
  gqa.tied_embeddings = false;
  out.push_back({"gqa partial rope swiglu untied", gqa});
  LmShape mha = base_shape(AttentionKind::kMha);
  mha.norm = NormKind::kLayerNorm;
  out.push_back({"mha layernorm tied", mha});
  LmShape mqa = base_shape(AttentionKind::kMqa);
  mqa.ffn = FfnKind::kGelu;
  out.push_back({"mqa gelu", mqa});
  return out;
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class TrainVsTorch : public ::testing::TestWithParam<Case> {};

TEST_P(TrainVsTorch, LossGradientsAndAdamWSteps) {
  if (!torch_available()) GTEST_SKIP() << kPython << " cannot import torch";
  const Case& tc = GetParam();
  const LmConfig config = lm_config_from_shape(tc.shape);
  LmModel model(config);
  model.init_random(11);
  // Perturb everything (norm gains included) so that a mixed-up tensor cannot hide behind 1s.
  std::mt19937_64 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  for (float& p : model.params()) p += noise(rng);

  const int64_t b = 2, s = 8;
  std::vector<int32_t> tokens(b * s), targets(b * s);
  for (int64_t i = 0; i < b * s; ++i) {
    tokens[i] = static_cast<int32_t>(rng() % 40);
    targets[i] = i % 5 == 2 ? -1 : static_cast<int32_t>(rng() % 40);  // some positions unscored
  }
  const int64_t steps = 5;
  const LrSchedule schedule{3e-3, 3e-4, 2, steps};
  const AdamWConfig adam{0.9, 0.95, 1e-8, 0.1};
  const double clip = 0.5;

  const std::string dir = std::filesystem::temp_directory_path() /
                          ("mla_train_torch_" + std::to_string(::getpid()) + "_" +
                           std::to_string(reinterpret_cast<uintptr_t>(&tc) % 100000));
  std::filesystem::create_directories(dir);
  SafetensorsWriter writer;
  for (const ParamTensor& t : model.tensors()) {
    writer.add(t.name, t.shape, model.params().subspan(t.offset, t.numel));
  }
  std::vector<float> tok_f(tokens.begin(), tokens.end()), tgt_f(targets.begin(), targets.end());
  writer.add("tokens", {b, s}, tok_f);
  writer.add("targets", {b, s}, tgt_f);
  nlohmann::json optim = {{"steps", steps},
                          {"beta1", adam.beta1},
                          {"beta2", adam.beta2},
                          {"eps", adam.eps},
                          {"weight_decay", adam.weight_decay},
                          {"grad_clip", clip}};
  for (int64_t i = 0; i < steps; ++i) optim["lr"].push_back(schedule.at(i));
  writer.set_metadata("config", lm_config_to_json(config));
  writer.set_metadata("optim", optim.dump());
  writer.write(dir + "/fixture.safetensors");
  const std::string cmd = std::string(kPython) + " " + MLA_TESTS_DIR +
                          "/reference/train_reference.py " + dir + "/fixture.safetensors " + dir +
                          "/reference.safetensors";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const SafetensorsFile ref = SafetensorsFile::open(dir + "/reference.safetensors");

  model.zero_grad();
  const double loss = model.forward(tokens, targets, b, s);
  model.backward();
  const double ref_loss = std::stod(ref.metadata().at("loss"));
  const double loss_err = std::fabs(loss - ref_loss) / ref_loss;
  EXPECT_LT(loss_err, kLossTol) << loss << " vs " << ref_loss;
  double worst_grad = 0.0;
  for (const ParamTensor& t : model.tensors()) {
    const double e =
        max_rel(model.grads().subspan(t.offset, t.numel), ref.read_f32("grad." + t.name));
    worst_grad = std::max(worst_grad, e);
    EXPECT_LT(e, kGradTol) << tc.name << ": gradient of " << t.name;
  }

  AdamW opt(model.num_parameters(), adam);
  const nlohmann::json ref_losses = nlohmann::json::parse(ref.metadata().at("losses"));
  double worst_step_loss = 0.0;
  for (int64_t i = 0; i < steps; ++i) {
    model.zero_grad();
    const double l = model.forward(tokens, targets, b, s);
    model.backward();
    clip_grad_norm(model.grads(), clip);
    opt.update(model.params(), model.grads(), model.tensors(), schedule.at(i));
    const double e = std::fabs(l - ref_losses[static_cast<size_t>(i)].get<double>()) / l;
    worst_step_loss = std::max(worst_step_loss, e);
    EXPECT_LT(e, 1e-5) << "step " << i;
  }
  double lr_sum = 0.0;
  for (int64_t i = 0; i < steps; ++i) lr_sum += schedule.at(i);
  double worst_param = 0.0;
  for (const ParamTensor& t : model.tensors()) {
    const double e =
        max_abs(model.params().subspan(t.offset, t.numel), ref.read_f32("final." + t.name)) /
        lr_sum;
    worst_param = std::max(worst_param, e);
    EXPECT_LT(e, kParamTol) << tc.name << ": parameter " << t.name << " after " << steps
                            << " steps";
  }
  std::printf(
      "[torch] %-38s loss %.2e  grads(%zu tensors) %.2e  step losses %.2e  params after %lld steps "
      "%.2e of sum(lr)\n",
      tc.name, loss_err, model.tensors().size(), worst_grad, worst_step_loss,
      static_cast<long long>(steps), worst_param);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Models, TrainVsTorch, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           std::string name = param_info.param.name;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace mla
