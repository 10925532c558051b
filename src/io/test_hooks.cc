#include "io/test_hooks.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace mla::detail {

void before_atomic_rename(const std::string& path, const std::string& tmp) {
  const char* ms = std::getenv("MLA_TEST_SLOW_SAVE");
  if (ms == nullptr || *ms == '\0') return;
  const char* only = std::getenv("MLA_TEST_SLOW_SAVE_PATH");
  if (only != nullptr && path.find(only) == std::string::npos) return;
  const long delay = std::strtol(ms, nullptr, 10);
  std::fprintf(stderr, "test hook: %s written to %s, renaming in %ld ms\n", path.c_str(),
               tmp.c_str(), delay);
  std::fflush(stderr);
  std::this_thread::sleep_for(std::chrono::milliseconds(delay));
}

}  // namespace mla::detail
