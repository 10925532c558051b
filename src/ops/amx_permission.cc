#include "ops/amx_permission.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mla::ops {
namespace {

// From Linux's arch/x86/include/uapi/asm/prctl.h and asm/fpu/types.h; glibc 2.36 has no names
// for them.
constexpr long kArchReqXcompPerm = 0x1023;
constexpr long kXfeatureXtiledata = 18;

AmxPermission ask_linux() {
  AmxPermission p;
#if defined(__linux__) && defined(SYS_arch_prctl)
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0) {
    p.granted = true;
  } else {
    const int err = errno;
    p.reason = "arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): " + std::string(std::strerror(err));
  }
#else
  p.reason = "not Linux: no way to request the tile state";
#endif
  return p;
}

}  // namespace

const AmxPermission& request_amx_permission() {
  static const AmxPermission permission = ask_linux();  // C++11 statics: once, thread-safe
  return permission;
}

std::string amx_status_text(bool cpuid_amx_bf16, bool xcr0_tile_state,
                            const AmxPermission& permission) {
  if (!cpuid_amx_bf16) return "not present";
  if (!xcr0_tile_state)
    return "present, refused by the OS (XCR0 lacks the tile state: kernel older than 5.16?)";
  if (!permission.granted) return "present, refused by the OS (" + permission.reason + ")";
  return "present, permitted";
}

}  // namespace mla::ops
