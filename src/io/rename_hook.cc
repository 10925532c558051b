#include "io/rename_hook.h"

#include <mutex>
#include <utility>

#include "mla/atomic_file.h"

namespace mla {
namespace {

std::mutex hook_mutex;
BeforeRenameHook& installed_hook() {
  static BeforeRenameHook hook;
  return hook;
}

}  // namespace

void set_before_rename_hook(BeforeRenameHook hook) {
  std::lock_guard<std::mutex> lock(hook_mutex);
  installed_hook() = std::move(hook);
}

namespace detail {

void before_atomic_rename(const std::string& path, const std::string& tmp) {
  BeforeRenameHook hook;
  {
    std::lock_guard<std::mutex> lock(hook_mutex);
    hook = installed_hook();
  }
  if (hook) hook(path, tmp);
}

}  // namespace detail
}  // namespace mla
