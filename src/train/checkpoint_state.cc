// The run state of a training checkpoint kept as metadata (options, step, the batch generator,
// the loss history), parsed and checked field by field: checkpoints are files from outside.
#include <nlohmann/json.hpp>
#include <sstream>

#include "mla/error.h"
#include "mla/safetensors.h"
#include "mla/train.h"

namespace mla {
namespace {

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

CheckpointRunState read_checkpoint_run_state(const SafetensorsFile& f) {
  CheckpointRunState state;
  state.options = parse_train_options_json(meta_field(f, "train"), f.path() + ": train");
  state.step = meta_int(f, "step");
  state.optimizer_step = meta_int(f, "optimizer_step");
  state.data_fingerprint = meta_field(f, "data_fingerprint");
  std::istringstream rng_state(meta_field(f, "data_rng"));
  rng_state >> state.data_rng;
  if (rng_state.fail()) throw Error(f.path() + ": metadata 'data_rng' is not a generator state");
  try {
    const nlohmann::json h = nlohmann::json::parse(meta_field(f, "history"));
    state.history.steps = h.at("steps").get<std::vector<double>>();
    state.history.loss = h.at("loss").get<std::vector<double>>();
    state.history.val_steps = h.at("val_steps").get<std::vector<double>>();
    state.history.val_loss = h.at("val_loss").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(f.path() + ": metadata 'history' is malformed: " + e.what());
  }
  return state;
}

}  // namespace mla
