// Whether this process may execute AMX tile instructions. The CPU reporting AMX (CPUID) is not
// enough: the OS must save the 8 KiB tile state (XCR0 bits 17 and 18), and Linux (5.16 and
// later) only lets a process touch it after asking with arch_prctl(ARCH_REQ_XCOMP_PERM,
// XFEATURE_XTILEDATA); a tile instruction before that kills the process with SIGILL.
#pragma once

#include <string>

namespace mla::ops {

struct AmxPermission {
  bool granted = false;
  std::string reason;  // why not, when refused (e.g. "arch_prctl(ARCH_REQ_XCOMP_PERM): ...")
};

// Asks Linux for the tile data state once per process (thread-safe; later calls return the
// first answer). Only call when CPUID and XCR0 report AMX: the request is then what decides.
const AmxPermission& request_amx_permission();

// The `amx:` line of `mla info --cpu`: "not present", "present, permitted", or
// "present, refused by the OS (<reason>)". xcr0_tile_state: XCR0 bits 17 and 18 both set.
std::string amx_status_text(bool cpuid_amx_bf16, bool xcr0_tile_state,
                            const AmxPermission& permission);

}  // namespace mla::ops
