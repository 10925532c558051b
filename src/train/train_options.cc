// Training options: validation, the derived schedule and AdamW settings, and their JSON form as
// stored in checkpoints (parsed back from untrusted files, so every field is checked).
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/fields_json.h"
#include "mla/error.h"
#include "mla/train.h"

namespace mla {
void TrainOptions::validate() const {
  validate_fields(*this, "train options");
  if (min_lr > lr) fail("train options", "min_lr", "must not exceed lr");
  if (data_path.empty() && task.empty())
    fail("train options", "task", "give a task or a data_path");
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
  return write_json_fields(o).dump();
}

TrainOptions parse_train_options_json(const std::string& text, const std::string& source) {
  TrainOptions o;
  try {
    read_json_fields(o, nlohmann::json::parse(text), source);
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
