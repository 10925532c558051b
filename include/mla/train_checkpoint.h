// Training checkpoints: one safetensors file holding the model parameters under their Hugging
// Face names (float32), the AdamW moments ("optimizer.exp_avg", "optimizer.exp_avg_sq", flat
// over the parameter buffer) and, as metadata, the format version, the model config, the
// training options, the step, the state of the batch generator and the loss history.
// Files are written atomically; every malformed file is rejected with one line naming the file
// and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mla/model_lm.h"
#include "mla/safetensors.h"

namespace mla {

constexpr const char* kCheckpointFormat = "mla.cpp-train";
constexpr int kCheckpointVersion = 1;

// "<dir>/step_00000100.safetensors".
std::string checkpoint_file_name(const std::string& dir, int64_t step);
// A file is returned as is; a folder gives its step_*.safetensors with the highest step.
// Throws "<path>: ..." when there is none.
std::string resolve_checkpoint(const std::string& path);

// Opens and checks the format tag and version; returns the file and its config.
struct OpenedCheckpoint {
  SafetensorsFile file;
  LmConfig config;
};
OpenedCheckpoint open_checkpoint(const std::string& path);

// Reads one float32 tensor of the given shape; throws naming the file and tensor when it is
// missing, has another dtype or shape, or holds NaN or infinity.
std::vector<float> read_checkpoint_tensor(const SafetensorsFile& file, const std::string& name,
                                          const std::vector<int64_t>& shape);

// The model of a checkpoint (for generation): config and parameters, validated.
LmModel load_model_checkpoint(const std::string& path);

}  // namespace mla
