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
