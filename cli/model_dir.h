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
