// SafetensorsFile: mmap the file, then validate the whole header before any tensor is touched,
// so every later access stays inside the mapping.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/json_text.h"
#include "mla/error.h"
#include "mla/safetensors.h"

namespace mla {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // real headers are a few MB at most

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

struct SafetensorsFile::Impl {
  std::string path;
  void* map = nullptr;
  size_t map_size = 0;
  const std::byte* data = nullptr;  // start of the data section
  uint64_t data_size = 0;
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;

  ~Impl() {
    if (map != nullptr) munmap(map, map_size);
  }
  [[noreturn]] void fail(const std::string& reason) const { throw Error(path + ": " + reason); }
  [[noreturn]] void fail_tensor(const std::string& name, const std::string& reason) const {
    throw Error(path + ": tensor '" + name + "': " + reason);
  }
  void parse_header(const std::string& header);
  TensorInfo parse_entry(const std::string& name, const nlohmann::json& entry) const;
};

TensorInfo SafetensorsFile::Impl::parse_entry(const std::string& name,
                                              const nlohmann::json& entry) const {
  if (!entry.is_object()) fail_tensor(name, "entry must be an object");
  TensorInfo info;
  info.name = name;
  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string())
    fail_tensor(name, "missing or non-string 'dtype'");
  auto parsed = dtype_from_name(dtype->get<std::string>());
  if (!parsed)
    fail_tensor(name,
                "unsupported dtype '" + dtype->get<std::string>() + "' (F32, BF16, F16, F8_E4M3)");
  info.dtype = *parsed;

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) fail_tensor(name, "missing or non-array 'shape'");
  uint64_t numel = 1;
  for (const auto& dim : *shape) {
    if (!dim.is_number_integer()) fail_tensor(name, "shape entries must be integers");
    if (dim.is_number_unsigned() ? dim.get<uint64_t>() > (1ull << 62) : dim.get<int64_t>() < 0) {
      fail_tensor(name, "shape " + json_text(*shape) + " has a negative or absurd dimension");
    }
    const uint64_t d = dim.get<uint64_t>();
    if (!checked_mul(numel, d, &numel))
      fail_tensor(name, "element count of shape " + json_text(*shape) + " overflows");
    info.shape.push_back(static_cast<int64_t>(d));
  }
  uint64_t nbytes = 0;
  if (!checked_mul(numel, dtype_size(info.dtype), &nbytes) || numel > (1ull << 62)) {
    fail_tensor(name, "byte count of shape " + json_text(*shape) + " overflows");
  }

  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    fail_tensor(name, "'data_offsets' must be two non-negative integers");
  }
  info.begin = (*offsets)[0].get<uint64_t>();
  info.end = (*offsets)[1].get<uint64_t>();
  if (info.begin > info.end) {
    fail_tensor(name, "data_offsets [" + std::to_string(info.begin) + ", " +
                          std::to_string(info.end) + "] begin after end");
  }
  if (info.end > data_size) {
    fail_tensor(name, "data_offsets [" + std::to_string(info.begin) + ", " +
                          std::to_string(info.end) + "] out of range: the data section has " +
                          std::to_string(data_size) + " bytes");
  }
  if (info.end - info.begin != nbytes) {
    fail_tensor(name, "data_offsets span " + std::to_string(info.end - info.begin) +
                          " bytes but shape " + shape_to_string(info.shape) + " of " +
                          std::string(dtype_name(info.dtype)) + " needs " + std::to_string(nbytes));
  }
  return info;
}

void SafetensorsFile::Impl::parse_header(const std::string& header) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed JSON header: ") + e.what());
  }
  if (!j.is_object()) fail("malformed JSON header: the top level must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail("'__metadata__' must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail("'__metadata__' value for '" + m.key() + "' must be a string");
        metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    tensors[it.key()] = parse_entry(it.key(), *it);
  }
  // No two tensors may share bytes: sort by start and compare neighbours.
  std::vector<const TensorInfo*> order;
  for (const auto& [name, info] : tensors) {
    if (info.end > info.begin) order.push_back(&info);
  }
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i]->begin < order[i - 1]->end) {
      fail("tensors '" + order[i - 1]->name + "' and '" + order[i]->name +
           "' overlap in the data section");
    }
  }
}

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) impl->fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    impl->fail("not a regular file");
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    impl->fail("truncated: " + std::to_string(file_size) +
               " bytes, the 8-byte header length is missing");
  }
  impl->map_size = static_cast<size_t>(file_size);
  impl->map = mmap(nullptr, impl->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (impl->map == MAP_FAILED) {
    impl->map = nullptr;
    impl->fail(std::string("cannot map: ") + std::strerror(errno));
  }
  const auto* bytes = static_cast<const unsigned char*>(impl->map);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > file_size - 8) {
    impl->fail("header length " + std::to_string(header_len) + " is past the end of the file (" +
               std::to_string(file_size) + " bytes)");
  }
  if (header_len > kMaxHeaderBytes)
    impl->fail("header length " + std::to_string(header_len) + " exceeds 100 MB");
  impl->data = static_cast<const std::byte*>(impl->map) + 8 + header_len;
  impl->data_size = file_size - 8 - header_len;
  impl->parse_header(
      std::string(reinterpret_cast<const char*>(bytes + 8), static_cast<size_t>(header_len)));
  return SafetensorsFile(std::move(impl));
}

const std::string& SafetensorsFile::path() const {
  return impl_->path;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return impl_->tensors.count(name) != 0;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = impl_->tensors.find(name);
  if (it == impl_->tensors.end()) impl_->fail("no tensor '" + name + "'");
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> names;
  for (const auto& [name, info] : impl_->tensors) names.push_back(name);
  return names;
}

const std::map<std::string, std::string>& SafetensorsFile::metadata() const {
  return impl_->metadata;
}

std::span<const std::byte> SafetensorsFile::bytes(const std::string& name) const {
  const TensorInfo& t = info(name);
  return {impl_->data + t.begin, static_cast<size_t>(t.end - t.begin)};
}

std::vector<float> SafetensorsFile::read_f32(const std::string& name) const {
  const TensorInfo& t = info(name);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_f32(impl_->data + t.begin, t.dtype, out.size(), out.data());
  return out;
}

}  // namespace mla
