// SafetensorsWriter: header + data written to a temporary file beside the target, flushed to
// disk, then renamed over it, so a crash mid-write never leaves a half-written file behind.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "mla/atomic_file.h"
#include "mla/error.h"
#include "mla/safetensors.h"

namespace mla {
namespace {

int64_t checked_numel(const std::string& name, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      throw Error("safetensors writer: tensor '" + name + "': negative dimension in " +
                  shape_to_string(shape));
    if (d != 0 && n > (int64_t{1} << 50) / d)
      throw Error("safetensors writer: tensor '" + name + "': shape too large");
    n *= d;
  }
  return n;
}

}  // namespace

void SafetensorsWriter::add(const std::string& name, const std::vector<int64_t>& shape,
                            std::span<const float> values, DType store_as) {
  if (store_as == DType::kF8E4M3)
    throw Error("safetensors writer: tensor '" + name + "': cannot store as F8_E4M3");
  if (checked_numel(name, shape) != static_cast<int64_t>(values.size())) {
    throw Error("safetensors writer: tensor '" + name + "': shape " + shape_to_string(shape) +
                " needs " + std::to_string(checked_numel(name, shape)) + " values, got " +
                std::to_string(values.size()));
  }
  std::vector<std::byte> data(values.size() * dtype_size(store_as));
  convert_from_f32(values.data(), values.size(), store_as, data.data());
  add_raw(name, store_as, shape, data);
}

void SafetensorsWriter::add_raw(const std::string& name, DType dtype,
                                const std::vector<int64_t>& shape,
                                std::span<const std::byte> data) {
  if (name.empty() || name == "__metadata__")
    throw Error("safetensors writer: invalid tensor name '" + name + "'");
  for (const Entry& e : entries_) {
    if (e.name == name) throw Error("safetensors writer: duplicate tensor '" + name + "'");
  }
  const int64_t numel = checked_numel(name, shape);
  if (static_cast<uint64_t>(numel) * dtype_size(dtype) != data.size()) {
    throw Error("safetensors writer: tensor '" + name + "': " + std::to_string(data.size()) +
                " bytes for shape " + shape_to_string(shape) + " of " +
                std::string(dtype_name(dtype)));
  }
  entries_.push_back(Entry{name, dtype, shape, std::vector<std::byte>(data.begin(), data.end())});
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Entry& e : entries_) {
    header[e.name] = {{"dtype", std::string(dtype_name(e.dtype))},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.data.size()}}};
    offset += e.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  unsigned char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<unsigned char>((text.size() >> (8 * i)) & 0xffu);

  std::vector<std::string_view> pieces = {
      std::string_view(reinterpret_cast<const char*>(length), 8), text};
  for (const Entry& e : entries_)
    pieces.emplace_back(reinterpret_cast<const char*>(e.data.data()), e.data.size());
  write_file_atomic(path, pieces);
}

}  // namespace mla
