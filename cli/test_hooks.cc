#include "test_hooks.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "mla/atomic_file.h"

namespace mla::cli {

void install_test_hooks_from_environment() {
  const char* ms = std::getenv("MLA_TEST_SLOW_SAVE");
  if (ms == nullptr || *ms == '\0') return;
  const long delay = std::strtol(ms, nullptr, 10);
  const char* only_env = std::getenv("MLA_TEST_SLOW_SAVE_PATH");
  const std::string only = only_env != nullptr ? only_env : "";
  set_before_rename_hook([delay, only](const std::string& path, const std::string& tmp) {
    if (!only.empty() && path.find(only) == std::string::npos) return;
    std::fprintf(stderr, "test hook: %s written to %s, renaming in %ld ms\n", path.c_str(),
                 tmp.c_str(), delay);
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  });
}

}  // namespace mla::cli
