// Loading a model folder (config.json + safetensors) for the CLI commands.
#pragma once

#include <string>

#include "mla/config.h"
#include "mla/model.h"
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

// A whole model's weights from --weight-dtype: "" = the checkpoint's (f32 when it stores float32,
// else bf16, for bf16 and FP8 releases), "f32", "bf16", or "int8" (MLP, experts and head int8,
// attention bf16). Throws "--weight-dtype: ..." naming the choices.
void set_weight_dtype(const std::string& option, const std::string& dir,
                      DeepseekModel::Options& options);

// The latent cache from --cache-dtype: "" = the model's default (float32 under f32 weights, else
// bf16), "f32", "bf16", "fp8" or "int8". Throws "--cache-dtype: unknown value ...".
void set_cache_dtype(const std::string& option, DeepseekModel::Options& options);

// The help text of --cache-dtype on the whole-model commands.
inline constexpr const char* kModelCacheDtypeHelp =
    "Latent cache rows: f32, bf16, fp8 or int8 (fp8/int8: 656-byte rows of DeepSeek-V3.2's "
    "layout; default: f32 under f32 weights, else bf16)";

}  // namespace mla::cli
