#include "mla/weights.h"

#include <cmath>
#include <random>
#include <string>

#include "mla/error.h"
#include "mla/safetensors.h"
#include "model/random_init.h"
#include "model/tensor_io.h"

namespace mla {
namespace {

constexpr int64_t kFp8Block = 128;

// DeepSeek-V3 stores FP8 e4m3 weights with one float scale per 128x128 block ("weight_scale_inv":
// the factor that multiplies the stored value back to the real weight).
std::vector<float> dequantize_fp8(const SafetensorsFile& file, const std::string& name,
                                  const std::string& scale_name, const CheckpointDir& checkpoint) {
  const TensorInfo& info = file.info(name);
  if (info.shape.size() != 2) {
    throw Error(file.path() + ": tensor '" + name + "': FP8 weights must be 2-D, got shape " +
                shape_to_string(info.shape));
  }
  if (!checkpoint.contains(scale_name)) {
    throw Error(file.path() + ": tensor '" + name + "' is F8_E4M3 but its block scales '" +
                scale_name + "' are missing");
  }
  const SafetensorsFile& scale_file = checkpoint.file_for(scale_name);
  const int64_t rows = info.shape[0], cols = info.shape[1];
  const std::vector<int64_t> scale_shape = {(rows + kFp8Block - 1) / kFp8Block,
                                            (cols + kFp8Block - 1) / kFp8Block};
  if (scale_file.info(scale_name).shape != scale_shape) {
    throw Error(scale_file.path() + ": tensor '" + scale_name + "': expected shape " +
                shape_to_string(scale_shape) + ", got " +
                shape_to_string(scale_file.info(scale_name).shape));
  }
  std::vector<float> scales = scale_file.read_f32(scale_name);
  std::vector<float> values = file.read_f32(name);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      values[static_cast<size_t>(i * cols + j)] *=
          scales[static_cast<size_t>((i / kFp8Block) * scale_shape[1] + j / kFp8Block)];
    }
  }
  return values;
}

}  // namespace

std::string layer_prefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".self_attn.";
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

void check_tensor(const std::string& name, const std::vector<int64_t>& shape,
                  const std::vector<float>& data) {
  if (static_cast<int64_t>(data.size()) != numel(shape)) {
    throw Error("weights: " + name + ": expected " + std::to_string(numel(shape)) +
                " values for shape " + shape_to_string(shape) + ", got " +
                std::to_string(data.size()));
  }
  const int64_t bad = first_non_finite(data);
  if (bad >= 0) {
    throw Error("weights: " + name + ": value " + std::to_string(bad) + " is NaN or infinity");
  }
}

std::vector<float> load_checkpoint_tensor(const CheckpointDir& checkpoint, const std::string& name,
                                          const std::vector<int64_t>& shape,
                                          const std::string& why_needed) {
  if (!checkpoint.contains(name)) {
    throw Error(checkpoint.dir() + ": missing tensor '" + name + "' " + why_needed);
  }
  const SafetensorsFile& file = checkpoint.file_for(name);
  const TensorInfo& info = file.info(name);
  if (info.shape != shape) {
    throw Error(file.path() + ": tensor '" + name + "': expected shape " + shape_to_string(shape) +
                ", got " + shape_to_string(info.shape));
  }
  std::vector<float> data = info.dtype == DType::kF8E4M3
                                ? dequantize_fp8(file, name, name + "_scale_inv", checkpoint)
                                : file.read_f32(name);
  // A NaN weight would silently turn every output NaN; refuse it here, naming the file.
  const int64_t bad = first_non_finite(data);
  if (bad >= 0) {
    throw Error(file.path() + ": tensor '" + name + "': value " + std::to_string(bad) +
                " is NaN or infinity");
  }
  return data;
}

int64_t first_non_finite(const std::vector<float>& data) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (!std::isfinite(data[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

void MlaWeights::check_shapes(const MlaConfig& config) const {
  for_each_tensor(config, check_tensor);
}

MlaWeightView MlaWeights::view(const MlaConfig& config) const {
  MlaWeightView v;
  for_each_tensor_pair(
      config, v, *this,
      [](const std::string&, const std::vector<int64_t>&, const float*& ptr,
         const std::vector<float>& data) { ptr = data.empty() ? nullptr : data.data(); });
  return v;
}

void fill_random_tensor(const std::string& name, const std::vector<int64_t>& shape,
                        std::vector<float>& data, std::mt19937_64& rng) {
  data.resize(static_cast<size_t>(numel(shape)));
  if (shape.size() == 1) {
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    std::uniform_real_distribution<float> dist(is_bias ? -0.2f : 0.8f, is_bias ? 0.2f : 1.2f);
    for (float& v : data) v = dist(rng);
    return;
  }
  const float bound = std::sqrt(3.0f / static_cast<float>(shape[1]));
  std::uniform_real_distribution<float> dist(-bound, bound);
  for (float& v : data) v = dist(rng);
}

MlaWeights MlaWeights::random(const MlaConfig& config, uint64_t seed) {
  config.validate();
  MlaWeights w;
  std::mt19937_64 rng(seed);
  w.for_each_tensor(
      config, [&rng](const std::string& name, const std::vector<int64_t>& shape,
                     std::vector<float>& data) { fill_random_tensor(name, shape, data, rng); });
  return w;
}

MlaWeights load_layer_weights(const CheckpointDir& checkpoint, const MlaConfig& config,
                              int64_t layer) {
  config.validate();
  if (layer < 0)
    throw Error(checkpoint.dir() + ": layer index must not be negative, got " +
                std::to_string(layer));
  const std::string prefix = layer_prefix(layer);
  bool any_found = false;
  for (const std::string& name : checkpoint.names()) {
    if (name.rfind(prefix, 0) == 0) {
      any_found = true;
      break;
    }
  }
  if (!any_found) {
    throw Error(checkpoint.dir() + ": no tensors for layer " + std::to_string(layer) +
                " (no name starts with '" + prefix + "')");
  }
  MlaWeights w;
  w.for_each_tensor(config, [&](const std::string& suffix, const std::vector<int64_t>& shape,
                                std::vector<float>& data) {
    data = load_checkpoint_tensor(checkpoint, prefix + suffix, shape, "required by the config");
  });
  return w;
}

void save_layer_weights(const std::string& path, const MlaConfig& config, int64_t layer,
                        const MlaWeights& weights, DType dtype) {
  weights.check_shapes(config);
  SafetensorsWriter writer;
  const std::string prefix = layer_prefix(layer);
  weights.for_each_tensor(config, [&](const std::string& name, const std::vector<int64_t>& shape,
                                      const std::vector<float>& data) {
    writer.add(prefix + name, shape, data, dtype);
  });
  writer.set_metadata("format", "pt");
  writer.write(path);
}

}  // namespace mla
