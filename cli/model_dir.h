// Loading a model folder (config.json + safetensors) for the CLI commands.
#pragma once

#include <string>

#include "mla/config.h"
#include "mla/safetensors.h"

namespace mla::cli {

struct ModelDir {
  MlaConfig config;
  CheckpointDir checkpoint;
};

// Throws "<dir>: not a directory", "<dir>/config.json: ...", and the checkpoint's errors.
ModelDir open_model_dir(const std::string& dir);

}  // namespace mla::cli

namespace mla::cli {

// The compute dtype of a whole model's weights from --weight-dtype ("" = the checkpoint's:
// f32 when it stores float32, else bf16). Throws "--weight-dtype: ..." naming the choices.
DType whole_model_weight_dtype(const std::string& option, const std::string& dir);

}  // namespace mla::cli
