// mla bench on a whole model (--preset deepseek-v2-lite-model [--layers N], or --model DIR of a
// whole-model checkpoint): prefill and batched decode tokens/s, with the decode memory floor.
#pragma once

#include <cstdint>
#include <string>

namespace mla::cli {

struct ModelBenchOptions {
  std::string preset, model, weight_dtype = "bf16", json, batches = "1,8";
  std::string cache_dtype;  // "": the model's default (model_dir.h set_cache_dtype)
  int64_t layers = 0;       // preset only: decoder layers (0: the preset's)
  int64_t prefill_tokens = 512;
  int64_t context = 64;       // tokens cached per sequence before the timed decode steps
  int64_t prefill_chunk = 0;  // 0: the model's default
  int repeats = 7;
};

// Whether `mla bench` should run the whole-model bench: a model preset (name ending in
// "-model") or a model folder whose config.json names an architecture.
bool is_model_bench(const std::string& preset, const std::string& model);
int run_model_bench(const ModelBenchOptions& opt);

}  // namespace mla::cli
