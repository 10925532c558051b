// Opening and validating training checkpoints (include/mla/train_checkpoint.h). Writing lives
// with the Trainer, which owns the state a checkpoint holds.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "mla/error.h"
#include "mla/train_checkpoint.h"

namespace mla {
namespace {

// The step of "step_<digits>.safetensors", or -1 for any other name.
long long checkpoint_step_of(const std::string& name) {
  const std::string prefix = "step_", suffix = ".safetensors";
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return -1;
  }
  const std::string digits =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 15 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

}  // namespace

std::string checkpoint_file_name(const std::string& dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "step_%08lld.safetensors", static_cast<long long>(step));
  return (std::filesystem::path(dir) / name).string();
}

std::string resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    if (!std::filesystem::exists(path, ec))
      throw Error(path + ": no such checkpoint file or folder");
    return path;
  }
  std::string best;
  long long best_step = -1;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    const long long step = checkpoint_step_of(entry.path().filename().string());
    if (entry.is_regular_file() && step > best_step) {
      best_step = step;
      best = entry.path().string();
    }
  }
  if (ec) throw Error(path + ": cannot list the folder: " + ec.message());
  if (best.empty()) throw Error(path + ": no step_*.safetensors checkpoint in the folder");
  return best;
}

OpenedCheckpoint open_checkpoint(const std::string& path) {
  SafetensorsFile file = SafetensorsFile::open(path);
  const auto& meta = file.metadata();
  auto format = meta.find("format");
  if (format == meta.end() || format->second != kCheckpointFormat) {
    throw Error(path + ": not an mla.cpp training checkpoint (metadata 'format' is not '" +
                std::string(kCheckpointFormat) + "')");
  }
  auto version = meta.find("format_version");
  if (version == meta.end() || version->second != std::to_string(kCheckpointVersion)) {
    throw Error(
        path + ": checkpoint format version '" + (version == meta.end() ? "" : version->second) +
        "' is not supported (this build reads version " + std::to_string(kCheckpointVersion) + ")");
  }
  auto config = meta.find("config");
  if (config == meta.end()) throw Error(path + ": checkpoint has no 'config' metadata");
  LmConfig c = parse_lm_config_json(config->second, path + ": config");
  return OpenedCheckpoint{std::move(file), c};
}

std::vector<float> read_checkpoint_tensor(const SafetensorsFile& file, const std::string& name,
                                          const std::vector<int64_t>& shape) {
  if (!file.contains(name)) throw Error(file.path() + ": missing tensor '" + name + "'");
  const TensorInfo& info = file.info(name);
  if (info.dtype != DType::kF32) {
    throw Error(file.path() + ": tensor '" + name + "' is " + std::string(dtype_name(info.dtype)) +
                ", training checkpoints hold F32");
  }
  if (info.shape != shape) {
    throw Error(file.path() + ": tensor '" + name + "': expected shape " + shape_to_string(shape) +
                ", got " + shape_to_string(info.shape));
  }
  std::vector<float> values = file.read_f32(name);
  for (float v : values) {
    if (!std::isfinite(v))
      throw Error(file.path() + ": tensor '" + name + "' holds NaN or infinity");
  }
  return values;
}

}  // namespace mla
