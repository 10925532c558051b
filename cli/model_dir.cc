#include "model_dir.h"

#include <filesystem>

#include "cache_dtype.h"
#include "mla/error.h"

namespace mla::cli {

ModelDir open_model_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir + ": not a directory (--model expects a model folder)");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(config_path, ec))
    throw Error(config_path + ": missing (the model folder needs a config.json)");
  MlaConfig config = load_config_json(config_path);
  return ModelDir{config, CheckpointDir::open(dir)};
}

}  // namespace mla::cli

namespace mla::cli {

void set_weight_dtype(const std::string& option, const std::string& dir,
                      DeepseekModel::Options& options) {
  options.int8 = false;
  if (option.empty()) {
    const CheckpointDir ck = CheckpointDir::open(dir);
    const std::string name = "model.embed_tokens.weight";
    const bool f32 = ck.contains(name) && ck.file_for(name).info(name).dtype == DType::kF32;
    options.weight_dtype = f32 ? DType::kF32 : DType::kBF16;
  } else if (option == "f32") {
    options.weight_dtype = DType::kF32;
  } else if (option == "bf16") {
    options.weight_dtype = DType::kBF16;
  } else if (option == "int8") {
    options.weight_dtype = DType::kBF16;
    options.int8 = true;
  } else {
    throw Error("--weight-dtype: must be f32, bf16 or int8, got '" + option + "'");
  }
}

void set_cache_dtype(const std::string& option, DeepseekModel::Options& options) {
  options.cache_dtype.reset();
  if (!option.empty()) options.cache_dtype = parse_cache_dtype("--cache-dtype", option);
}

}  // namespace mla::cli
