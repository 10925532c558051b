// The library's side of set_before_rename_hook (include/mla/atomic_file.h): every atomic write
// calls this once its temporary file is complete and on disk, just before the rename.
#pragma once

#include <string>

namespace mla::detail {

// Runs the installed hook, if any; does nothing otherwise.
void before_atomic_rename(const std::string& path, const std::string& tmp);

}  // namespace mla::detail
