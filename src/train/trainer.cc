// The training loop state machine (include/mla/train.h) and its checkpoints.
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mla/error.h"
#include "mla/train.h"
#include "mla/train_checkpoint.h"
#include "train/activation.h"

namespace mla {
namespace {

[[noreturn]] void fail(const std::string& field, const std::string& reason) {
  throw Error("train options: " + field + ": " + reason);
}

TrainData make_data(const TrainOptions& o) {
  if (o.data_path.empty()) return TrainData::synthetic(parse_task(o.task));
  return TrainData::from_file(o.data_path, o.val_fraction, o.seq);
}

nlohmann::json history_to_json(const TrainHistory& h) {
  return {
      {"steps", h.steps}, {"loss", h.loss}, {"val_steps", h.val_steps}, {"val_loss", h.val_loss}};
}

const std::string& meta_field(const SafetensorsFile& file, const char* key) {
  auto it = file.metadata().find(key);
  if (it == file.metadata().end())
    throw Error(file.path() + ": checkpoint has no '" + key + "' metadata");
  return it->second;
}

int64_t meta_int(const SafetensorsFile& file, const char* key) {
  const std::string& text = meta_field(file, key);
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  throw Error(file.path() + ": metadata '" + key + "' is not a non-negative integer: '" + text +
              "'");
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
  if (data_path.empty()) parse_task(task);
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

Trainer::Trainer(LmModel model, const TrainOptions& options, TrainData data)
    : options_(options),
      model_(std::move(model)),
      adam_(model_.num_parameters(), options.adamw()),
      data_(std::move(data)),
      rng_(options.seed ^ 0xda7a5eedull) {}

Trainer::Trainer(const LmConfig& config, const TrainOptions& options)
    : Trainer(LmModel(config), options, make_data(options)) {
  options_.validate();
  if (options_.seq > config.max_seq_len) {
    throw Error("train options: seq: " + std::to_string(options_.seq) +
                " exceeds the model's max_seq_len " + std::to_string(config.max_seq_len));
  }
  if (config.vocab_size < kByteVocab) {
    throw Error("lm config: vocab_size: byte-level data needs at least 256, got " +
                std::to_string(config.vocab_size));
  }
  model_.init_random(options_.seed);
}

StepResult Trainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  const TrainOptions& o = options_;
  const TrainBatch b = data_.train_batch(rng_, o.batch, o.seq);
  model_.zero_grad();
  const double loss = model_.forward(b.tokens, b.targets, o.batch, o.seq, /*training=*/true,
                                     train::dropout_key(o.seed, step_, 0));
  if (!std::isfinite(loss)) {
    throw Error("training diverged: the loss is " + std::to_string(loss) + " at step " +
                std::to_string(step_ + 1) + " (try a lower --lr)");
  }
  model_.backward();
  StepResult r;
  r.grad_norm = clip_grad_norm(model_.grads(), o.grad_clip);
  r.lr = o.schedule().at(step_);
  adam_.update(model_.params(), model_.grads(), model_.tensors(), r.lr);
  ++step_;
  r.step = step_;
  r.loss = loss;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.tokens_per_second = static_cast<double>(o.batch * o.seq) / std::max(r.seconds, 1e-9);
  history_.steps.push_back(static_cast<double>(step_));
  history_.loss.push_back(loss);
  return r;
}

double Trainer::evaluate() {
  double sum = 0.0;
  for (int64_t i = 0; i < options_.eval_batches; ++i) {
    const TrainBatch b = data_.val_batch(i, options_.batch, options_.seq);
    sum += model_.forward(b.tokens, b.targets, options_.batch, options_.seq);
  }
  const double loss = sum / static_cast<double>(options_.eval_batches);
  history_.val_steps.push_back(static_cast<double>(step_));
  history_.val_loss.push_back(loss);
  return loss;
}

void Trainer::save(const std::string& path) const {
  SafetensorsWriter w;
  for (const ParamTensor& t : model_.tensors())
    w.add(t.name, t.shape, model_.params().subspan(t.offset, t.numel));
  w.add("optimizer.exp_avg", {model_.num_parameters()}, adam_.m());
  w.add("optimizer.exp_avg_sq", {model_.num_parameters()}, adam_.v());
  std::ostringstream rng_state;
  rng_state << rng_;
  w.set_metadata("format", kCheckpointFormat);
  w.set_metadata("format_version", std::to_string(kCheckpointVersion));
  w.set_metadata("config", lm_config_to_json(model_.config()));
  w.set_metadata("train", train_options_to_json(options_));
  w.set_metadata("step", std::to_string(step_));
  w.set_metadata("optimizer_step", std::to_string(adam_.step()));
  w.set_metadata("data_rng", rng_state.str());
  w.set_metadata("data_fingerprint", std::to_string(data_.fingerprint()));
  w.set_metadata("history", history_to_json(history_).dump());
  w.write(path);
}

Trainer Trainer::resume(const std::string& checkpoint_path, int64_t steps,
                        const std::string& data_path) {
  OpenedCheckpoint ckpt = open_checkpoint(resolve_checkpoint(checkpoint_path));
  const SafetensorsFile& f = ckpt.file;
  TrainOptions o = parse_train_options_json(meta_field(f, "train"), f.path() + ": train");
  if (steps > 0) o.steps = steps;
  if (!data_path.empty()) o.data_path = data_path;
  const int64_t step = meta_int(f, "step");
  if (step > o.steps) {
    throw Error(f.path() + ": the checkpoint is at step " + std::to_string(step) +
                ", past the requested " + std::to_string(o.steps) + " steps");
  }
  TrainData data = make_data(o);
  if (std::to_string(data.fingerprint()) != meta_field(f, "data_fingerprint")) {
    throw Error(f.path() + ": the data differs from the data the checkpoint was trained on (" +
                data.name() + ")");
  }
  LmModel model(ckpt.config);
  for (const ParamTensor& t : model.tensors()) {
    const std::vector<float> values = read_checkpoint_tensor(f, t.name, t.shape);
    std::copy(values.begin(), values.end(), model.params().begin() + t.offset);
  }
  Trainer trainer(std::move(model), o, std::move(data));
  trainer.adam_.m() =
      read_checkpoint_tensor(f, "optimizer.exp_avg", {trainer.model_.num_parameters()});
  trainer.adam_.v() =
      read_checkpoint_tensor(f, "optimizer.exp_avg_sq", {trainer.model_.num_parameters()});
  trainer.adam_.set_step(meta_int(f, "optimizer_step"));
  trainer.step_ = step;
  std::istringstream rng_state(meta_field(f, "data_rng"));
  rng_state >> trainer.rng_;
  if (rng_state.fail()) throw Error(f.path() + ": metadata 'data_rng' is not a generator state");
  try {
    const nlohmann::json h = nlohmann::json::parse(meta_field(f, "history"));
    trainer.history_.steps = h.at("steps").get<std::vector<double>>();
    trainer.history_.loss = h.at("loss").get<std::vector<double>>();
    trainer.history_.val_steps = h.at("val_steps").get<std::vector<double>>();
    trainer.history_.val_loss = h.at("val_loss").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(f.path() + ": metadata 'history' is malformed: " + e.what());
  }
  return trainer;
}

}  // namespace mla
