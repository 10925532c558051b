#include "model_dir.h"

#include <filesystem>

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

DType whole_model_weight_dtype(const std::string& option, const std::string& dir) {
  if (option.empty()) {
    const CheckpointDir ck = CheckpointDir::open(dir);
    const std::string name = "model.embed_tokens.weight";
    if (ck.contains(name) && ck.file_for(name).info(name).dtype == DType::kF32) {
      return DType::kF32;
    }
    return DType::kBF16;
  }
  if (option == "f32") return DType::kF32;
  if (option == "bf16") return DType::kBF16;
  if (option == "int8") {
    throw Error("--weight-dtype: int8 is not implemented yet for whole models (use f32 or bf16)");
  }
  throw Error("--weight-dtype: must be f32, bf16 or int8, got '" + option + "'");
}

}  // namespace mla::cli
