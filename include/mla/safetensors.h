// Reading and writing the safetensors format (Hugging Face), memory-mapped.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// (name -> {dtype, shape, data_offsets}, optional "__metadata__"), then the data.
// Every malformed file is rejected with an mla::Error naming the file and the reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mla/dtype.h"

namespace mla {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
  int64_t numel() const;
};

std::string shape_to_string(const std::vector<int64_t>& shape);  // "[2, 3]"

// A read-only, memory-mapped safetensors file. Movable, not copyable.
class SafetensorsFile {
 public:
  // Throws mla::Error "<path>: <reason>" for a missing, truncated or malformed file.
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& path() const;
  bool contains(const std::string& name) const;
  // Throws "<path>: no tensor '<name>'".
  const TensorInfo& info(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  const std::map<std::string, std::string>& metadata() const;
  // The raw little-endian bytes of a tensor, inside the mapping.
  std::span<const std::byte> bytes(const std::string& name) const;
  // The tensor converted to float32 (any supported dtype).
  std::vector<float> read_f32(const std::string& name) const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Collects tensors and writes them atomically (temporary file in the same folder, then rename).
class SafetensorsWriter {
 public:
  // Stores float32 data as `store_as` (F32, BF16 or F16). Throws on a duplicate name or a
  // shape whose element count differs from `values.size()`.
  void add(const std::string& name, const std::vector<int64_t>& shape,
           std::span<const float> values, DType store_as = DType::kF32);
  // Stores raw bytes already in `dtype`; the byte count must match the shape.
  void add_raw(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
               std::span<const std::byte> data);
  void set_metadata(const std::string& key, const std::string& value);
  // Throws "<path>: <reason>" if the file cannot be written; an existing file is left intact.
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> data;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint folder: either one `model.safetensors` (or any single *.safetensors file), or
// shards listed by `model.safetensors.index.json` ("weight_map": tensor -> file).
class CheckpointDir {
 public:
  // Throws "<dir>: <reason>" (no safetensors file, malformed index, missing shard, ...).
  static CheckpointDir open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool contains(const std::string& name) const;
  // The file holding `name`; throws "<dir>: no tensor '<name>' in the checkpoint".
  const SafetensorsFile& file_for(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted, over all shards

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::size_t> owner_;  // tensor name -> index into files_
};

}  // namespace mla
