// Writing a whole file atomically: a temporary file in the same folder, fsync, then rename, so a
// crash never leaves a half-written file and the previous version survives until the rename.
// Every file the library writes (checkpoints, safetensors, plots) goes through here.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace mla {

// Writes the pieces one after the other. Throws mla::Error "<path>: <reason>" when the file
// cannot be written; the previous file is then left as it was.
void write_file_atomic(const std::string& path, std::span<const std::string_view> pieces);
inline void write_file_atomic(const std::string& path, std::string_view contents) {
  write_file_atomic(path, std::span<const std::string_view>(&contents, 1));
}

}  // namespace mla
