#include "ops/cpu_features.h"

#include <cpuid.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ops/amx_permission.h"

namespace mla::ops {
namespace {

// XGETBV without -mxsave: the OS must have enabled the register state before we touch it.
uint64_t xgetbv0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  f.amx_status = amx_status_text(false, false, {});
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(1, 0, eax, ebx, ecx, edx);
  const bool osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
  const bool fma = (ecx >> 12) & 1, f16c = (ecx >> 29) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;    // SSE and AVX registers saved by the OS
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;  // plus opmask and the upper ZMM registers
  if (!ymm_state) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const unsigned leaf7_ebx = ebx, leaf7_edx = edx;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  const unsigned leaf7_1_eax = eax;
  f.fma = fma;
  f.f16c = f16c;
  f.avx2 = (leaf7_ebx >> 5) & 1;
  if (zmm_state) {
    f.avx512f = (leaf7_ebx >> 16) & 1;
    f.avx512bw = (leaf7_ebx >> 30) & 1;
    f.avx512vl = (leaf7_ebx >> 31) & 1;
    f.avx512bf16 = f.avx512f && ((leaf7_1_eax >> 5) & 1);
    f.avx512fp16 = f.avx512f && ((leaf7_edx >> 23) & 1);
  }
  f.amx_tile = (leaf7_edx >> 24) & 1;
  f.amx_bf16 = f.amx_tile && ((leaf7_edx >> 22) & 1);
  f.amx_int8 = f.amx_tile && ((leaf7_edx >> 25) & 1);
  // Tile state (XTILECFG, XTILEDATA: XCR0 bits 17, 18) enabled by the OS, then granted to us.
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;
  AmxPermission permission;
  if (f.amx_bf16 && tile_state) permission = request_amx_permission();
  f.amx_usable = f.amx_bf16 && tile_state && permission.granted;
  f.amx_status = amx_status_text(f.amx_bf16, tile_state, permission);
  return f;
}

SimdLevel level_of(const CpuFeatures& f) {
  if (!f.avx2 || !f.fma || !f.f16c) return SimdLevel::kScalar;
  if (!f.avx512f || !f.avx512bw || !f.avx512vl) return SimdLevel::kAvx2;
  if (!f.avx512bf16) return SimdLevel::kAvx512;
  return f.amx_usable ? SimdLevel::kAmx : SimdLevel::kAvx512Bf16;
}

SimdLevel level_from_env(bool& forced) {
  const SimdLevel supported = supported_simd_level();
  forced = false;
  const char* env = std::getenv("MLA_SIMD");
  if (env == nullptr || *env == '\0') return supported;
  const std::optional<SimdLevel> wanted = simd_level_from_name(env);
  if (!wanted) {
    // A typo must not silently run the default kernels the user wanted to avoid.
    std::fprintf(stderr,
                 "mla: ignoring MLA_SIMD=%s (expected scalar, avx2, avx512, avx512bf16, amx)\n",
                 env);
    return supported;
  }
  forced = true;
  return std::min(*wanted, supported);
}

// -1: not decided yet; the environment is read on first use.
std::atomic<int> g_level{-1};
// Whether g_level was asked for (MLA_SIMD, set_simd_level) rather than the CPU's best.
std::atomic<bool> g_forced{false};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string cpu_model_name() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  // GCC declares __get_cpuid_max unsigned, clang int: compare as unsigned on both.
  if (static_cast<unsigned>(__get_cpuid_max(0x80000000, nullptr)) < 0x80000004u) return "";
  std::string name;
  for (unsigned leaf = 0x80000002; leaf <= 0x80000004; ++leaf) {
    __cpuid(leaf, eax, ebx, ecx, edx);
    for (unsigned reg : {eax, ebx, ecx, edx})
      for (int i = 0; i < 4; ++i) name.push_back(static_cast<char>((reg >> (8 * i)) & 0xff));
  }
  name.erase(name.find_last_not_of(std::string(" \0", 2)) + 1);
  name.erase(0, name.find_first_not_of(' '));
  return name;
}

SimdLevel supported_simd_level() {
  return level_of(cpu_features());
}

SimdLevel simd_level() {
  int level = g_level.load(std::memory_order_relaxed);
  if (level < 0) {
    bool forced = false;
    level = static_cast<int>(level_from_env(forced));
    g_forced.store(forced, std::memory_order_relaxed);
    g_level.store(level, std::memory_order_relaxed);
  }
  return static_cast<SimdLevel>(level);
}

bool simd_level_forced() {
  simd_level();  // reads the environment on first use
  return g_forced.load(std::memory_order_relaxed);
}

SimdLevel set_simd_level(std::optional<SimdLevel> level) {
  bool forced = level.has_value();
  const SimdLevel effective =
      level ? std::min(*level, supported_simd_level()) : level_from_env(forced);
  g_forced.store(forced, std::memory_order_relaxed);
  g_level.store(static_cast<int>(effective), std::memory_order_relaxed);
  return effective;
}

std::string_view simd_level_name(SimdLevel level) {
  return enum_name(level);
}

std::optional<SimdLevel> simd_level_from_name(std::string_view name) {
  return enum_from_name<SimdLevel>(name);
}

}  // namespace mla::ops
