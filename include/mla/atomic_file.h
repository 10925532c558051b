// Writing a whole file atomically: a temporary file in the same folder, fsync, then rename, so a
// crash never leaves a half-written file and the previous version survives until the rename.
// Every file the library writes (checkpoints, safetensors, plots) goes through here.
#pragma once

#include <functional>
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

// Called by every atomic write of the library (write_file_atomic, safetensors and checkpoint
// saves) once the temporary file `tmp` is complete and on disk, just before it is renamed over
// `path`. None by default. It lets a test catch a process at that exact moment, which no timing
// guess can: `mla` installs one from MLA_TEST_SLOW_SAVE (tests/cli/test_kill_mid_save.py).
using BeforeRenameHook = std::function<void(const std::string& path, const std::string& tmp)>;
// Replaces the hook (an empty function removes it); safe to call while other threads save.
void set_before_rename_hook(BeforeRenameHook hook);

}  // namespace mla
