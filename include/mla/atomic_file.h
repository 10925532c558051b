// Writing a whole file atomically: a temporary file in the same folder, fsync, then rename, so a
// crash never leaves a half-written file and the previous version survives until the rename.
#pragma once

#include <string>
#include <string_view>

namespace mla {

// Throws mla::Error "<path>: <reason>" when the file cannot be written.
void write_file_atomic(const std::string& path, std::string_view contents);

}  // namespace mla
