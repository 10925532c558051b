// Training a language model: the loop of `mla train` as a library class. A Trainer owns the
// model, the AdamW state, the data and the one random generator that draws training batches;
// its checkpoint holds all of them (plus the step and the loss history), so a resumed run
// continues bit for bit like an uninterrupted one. Legend: B batch, S sequence length.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "mla/model_lm.h"
#include "mla/train_data.h"
#include "mla/train_optim.h"

namespace mla {

struct TrainOptions {
  int64_t steps = 500;  // total optimiser steps of the run
  int64_t batch = 16;   // B
  int64_t seq = 64;     // S (<= the model's max_seq_len)
  double lr = 3e-3;     // peak learning rate
  double min_lr = -1;   // end of the cosine; < 0 means lr / 10
  int64_t warmup = -1;  // warm-up steps; < 0 means min(100, steps / 10)
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;  // global norm; 0 disables clipping
  int64_t eval_every = 100;
  int64_t eval_batches = 8;
  uint64_t seed = 1;          // initial weights, batch order and dropout masks
  std::string task = "copy";  // generated task when data_path is empty (named by the front end)
  std::string data_path;      // text file; the last val_fraction is held out
  double val_fraction = 0.1;

  // Every field once: validation, the checkpoint's JSON form (every key required there).
  template <class V>
  void visit_fields(V& v) {
    v("steps", steps, {.min = 1, .required = true});
    v("batch", batch, {.min = 1, .max = 1 << 20, .required = true});
    v("seq", seq, {.min = 1, .max = 1 << 16, .required = true});
    v("lr", lr, {.min = 0, .min_open = true, .required = true});
    v("min_lr", min_lr, {.required = true});
    v("warmup", warmup, {.required = true});
    v("weight_decay", weight_decay, {.min = 0, .required = true});
    v("beta1", beta1, {.min = 0, .max = 1, .max_open = true, .required = true});
    v("beta2", beta2, {.min = 0, .max = 1, .max_open = true, .required = true});
    v("eps", eps, {.min = 0, .min_open = true, .required = true});
    v("grad_clip", grad_clip, {.min = 0, .required = true});
    v("eval_every", eval_every, {.min = 1, .required = true});
    v("eval_batches", eval_batches, {.min = 1, .required = true});
    v("seed", seed, {.required = true});
    v("task", task, {.required = true});
    v("data_path", data_path, {.required = true});
    v("val_fraction", val_fraction,
      {.min = 0, .max = 1, .min_open = true, .max_open = true, .required = true});
  }
  bool operator==(const TrainOptions&) const = default;

  void validate() const;  // throws "train options: <field>: <reason>"
  LrSchedule schedule() const;
  AdamWConfig adamw() const;
};

std::string train_options_to_json(const TrainOptions& options);
TrainOptions parse_train_options_json(const std::string& text, const std::string& source);

struct StepResult {
  int64_t step = 0;   // steps completed, 1-based
  double loss = 0.0;  // training loss of the batch, before the update
  double lr = 0.0;
  double grad_norm = 0.0;  // before clipping
  double seconds = 0.0;
  double tokens_per_second = 0.0;
};

struct TrainHistory {
  std::vector<double> steps, loss;          // every step
  std::vector<double> val_steps, val_loss;  // every evaluation
};

class SafetensorsFile;

// What a checkpoint holds besides its tensors, from its metadata. Throws "<file>: ..." naming
// the field that is missing or malformed.
struct CheckpointRunState {
  TrainOptions options;
  int64_t step = 0, optimizer_step = 0;
  std::mt19937_64 data_rng;      // the batch generator, mid-stream
  std::string data_fingerprint;  // of the training text, to refuse resuming on other data
  TrainHistory history;
};
CheckpointRunState read_checkpoint_run_state(const SafetensorsFile& file);

// Makes the training data a run's options name. The library reads text files (data_path);
// a front end that generates data passes its own (the `mla` program's tasks:
// cli/train_tasks.h), which also serves a resumed run's options.
using DataFactory = std::function<TrainData(const TrainOptions& options)>;
// options.data_path's text; throws "train options: data_path: ..." when it is empty.
TrainData text_data(const TrainOptions& options);

class Trainer {
 public:
  // A fresh run: weights drawn from options.seed. Throws on an invalid config or options, or
  // options.seq > config.max_seq_len.
  Trainer(const LmConfig& config, const TrainOptions& options, const DataFactory& data = text_data);
  // Continues a checkpoint written by save(). `steps` > 0 replaces the total step count and
  // `data_path` (when not empty) the data file, which must hold the same text (checked by hash).
  static Trainer resume(const std::string& checkpoint_path, int64_t steps = 0,
                        const std::string& data_path = "", const DataFactory& data = text_data);

  StepResult step();  // one optimiser step; throws when the loss is not finite
  double evaluate();  // mean loss over the fixed validation batches; recorded in history()
  // Writes every piece of state atomically (temporary file, then rename).
  void save(const std::string& path) const;

  int64_t steps_done() const { return step_; }
  const LmConfig& config() const { return model_.config(); }
  const TrainOptions& options() const { return options_; }
  const LmModel& model() const { return model_; }
  const TrainData& data() const { return data_; }
  const TrainHistory& history() const { return history_; }

 private:
  Trainer(LmModel model, const TrainOptions& options, TrainData data);

  TrainOptions options_;
  LmModel model_;
  AdamW adam_;
  TrainData data_;
  std::mt19937_64 rng_;
  int64_t step_ = 0;
  TrainHistory history_;
};

}  // namespace mla
