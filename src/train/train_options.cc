// Training options: validation, the derived schedule and AdamW settings, and their JSON form as
// stored in checkpoints (parsed back from untrusted files, so every field is checked).
#include <cmath>
#include <nlohmann/json.hpp>

#include "mla/error.h"
#include "mla/train.h"

namespace mla {
namespace {

[[noreturn]] void fail(const std::string& field, const std::string& reason) {
  throw Error("train options: " + field + ": " + reason);
}

}  // namespace

void TrainOptions::validate() const {
  if (steps < 1) fail("steps", "must be at least 1");
  if (batch < 1 || batch > (1 << 20)) fail("batch", "must be in [1, 2^20]");
  if (seq < 1 || seq > (1 << 16)) fail("seq", "must be in [1, 65536]");
  if (!(lr > 0.0) || !std::isfinite(lr)) fail("lr", "must be a positive number");
  if (!std::isfinite(min_lr) || min_lr > lr) fail("min_lr", "must not exceed lr");
  if (!(weight_decay >= 0.0)) fail("weight_decay", "must not be negative");
  if (!(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0))
    fail("betas", "must be in [0, 1)");
  if (!(eps > 0.0)) fail("eps", "must be positive");
  if (!(grad_clip >= 0.0)) fail("grad_clip", "must not be negative");
  if (eval_every < 1) fail("eval_every", "must be at least 1");
  if (eval_batches < 1) fail("eval_batches", "must be at least 1");
  if (!(val_fraction > 0.0 && val_fraction < 1.0)) fail("val_fraction", "must be in (0, 1)");
  if (data_path.empty() && task.empty()) fail("task", "give a task or a data_path");
}

LrSchedule TrainOptions::schedule() const {
  LrSchedule s;
  s.max_lr = lr;
  s.min_lr = min_lr < 0 ? lr / 10 : min_lr;
  s.warmup_steps = warmup < 0 ? std::min<int64_t>(100, steps / 10) : warmup;
  s.total_steps = steps;
  return s;
}

AdamWConfig TrainOptions::adamw() const {
  return AdamWConfig{beta1, beta2, eps, weight_decay};
}

std::string train_options_to_json(const TrainOptions& o) {
  nlohmann::ordered_json j = {{"steps", o.steps},
                              {"batch", o.batch},
                              {"seq", o.seq},
                              {"lr", o.lr},
                              {"min_lr", o.min_lr},
                              {"warmup", o.warmup},
                              {"weight_decay", o.weight_decay},
                              {"beta1", o.beta1},
                              {"beta2", o.beta2},
                              {"eps", o.eps},
                              {"grad_clip", o.grad_clip},
                              {"eval_every", o.eval_every},
                              {"eval_batches", o.eval_batches},
                              {"seed", o.seed},
                              {"task", o.task},
                              {"data_path", o.data_path},
                              {"val_fraction", o.val_fraction}};
  return j.dump();
}

TrainOptions parse_train_options_json(const std::string& text, const std::string& source) {
  TrainOptions o;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    o.steps = j.at("steps");
    o.batch = j.at("batch");
    o.seq = j.at("seq");
    o.lr = j.at("lr");
    o.min_lr = j.at("min_lr");
    o.warmup = j.at("warmup");
    o.weight_decay = j.at("weight_decay");
    o.beta1 = j.at("beta1");
    o.beta2 = j.at("beta2");
    o.eps = j.at("eps");
    o.grad_clip = j.at("grad_clip");
    o.eval_every = j.at("eval_every");
    o.eval_batches = j.at("eval_batches");
    o.seed = j.at("seed");
    o.task = j.at("task");
    o.data_path = j.at("data_path");
    o.val_fraction = j.at("val_fraction");
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": malformed training options: " + e.what());
  }
  try {
    o.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return o;
}

}  // namespace mla
