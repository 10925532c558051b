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

nlohmann::json history_to_json(const TrainHistory& h) {
  return {
      {"steps", h.steps}, {"loss", h.loss}, {"val_steps", h.val_steps}, {"val_loss", h.val_loss}};
}

}  // namespace

TrainData text_data(const TrainOptions& o) {
  if (o.data_path.empty()) {
    throw Error("train options: data_path: no text file given (generated tasks such as '" + o.task +
                "' come from the front end: mla train --task)");
  }
  return TrainData::from_file(o.data_path, o.val_fraction, o.seq);
}

Trainer::Trainer(LmModel model, const TrainOptions& options, TrainData data)
    : options_(options),
      model_(std::move(model)),
      adam_(model_.num_parameters(), options.adamw()),
      data_(std::move(data)),
      rng_(options.seed ^ 0xda7a5eedull) {}

Trainer::Trainer(const LmConfig& config, const TrainOptions& options, const DataFactory& data)
    : Trainer(LmModel(config), options, data(options)) {
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
                        const std::string& data_path, const DataFactory& make_data) {
  OpenedCheckpoint ckpt = open_checkpoint(resolve_checkpoint(checkpoint_path));
  const SafetensorsFile& f = ckpt.file;
  CheckpointRunState state = read_checkpoint_run_state(f);
  TrainOptions o = state.options;
  if (steps > 0) o.steps = steps;
  if (!data_path.empty()) o.data_path = data_path;
  if (state.step > o.steps) {
    throw Error(f.path() + ": the checkpoint is at step " + std::to_string(state.step) +
                ", past the requested " + std::to_string(o.steps) + " steps");
  }
  TrainData data = make_data(o);
  if (std::to_string(data.fingerprint()) != state.data_fingerprint) {
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
  trainer.adam_.set_step(state.optimizer_step);
  trainer.step_ = state.step;
  trainer.rng_ = state.data_rng;
  trainer.history_ = std::move(state.history);
  return trainer;
}

}  // namespace mla
