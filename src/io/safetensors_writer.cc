// SafetensorsWriter: header + data written to a temporary file beside the target, flushed to
// disk, then renamed over it, so a crash mid-write never leaves a half-written file behind.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "io/rename_hook.h"
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

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": write failed: " + std::strerror(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
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

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot create: " + std::strerror(errno));
  try {
    write_all(fd, length, 8, path);
    write_all(fd, text.data(), text.size(), path);
    for (const Entry& e : entries_) write_all(fd, e.data.data(), e.data.size(), path);
    if (::fsync(fd) != 0) throw Error(path + ": fsync failed: " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error(path + ": close failed: " + std::strerror(errno));
  }
  detail::before_atomic_rename(path, tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot replace: " + reason);
  }
}

}  // namespace mla
