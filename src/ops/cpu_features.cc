#include "ops/cpu_features.h"

#include <cpuid.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

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
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(1, 0, eax, ebx, ecx, edx);
  const bool osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
  const bool fma = (ecx >> 12) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;    // SSE and AVX registers saved by the OS
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;  // plus opmask and the upper ZMM registers
  if (!ymm_state) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const unsigned leaf7_ebx = ebx;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  const unsigned leaf7_1_eax = eax;
  f.fma = fma;
  f.avx2 = (leaf7_ebx >> 5) & 1;
  if (zmm_state) {
    f.avx512f = (leaf7_ebx >> 16) & 1;
    f.avx512bw = (leaf7_ebx >> 30) & 1;
    f.avx512vl = (leaf7_ebx >> 31) & 1;
    f.avx512bf16 = f.avx512f && ((leaf7_1_eax >> 5) & 1);
  }
  return f;
}

SimdLevel level_of(const CpuFeatures& f) {
  if (!f.avx2 || !f.fma) return SimdLevel::kScalar;
  if (!f.avx512f || !f.avx512bw || !f.avx512vl) return SimdLevel::kAvx2;
  return f.avx512bf16 ? SimdLevel::kAvx512Bf16 : SimdLevel::kAvx512;
}

SimdLevel level_from_env() {
  const SimdLevel supported = supported_simd_level();
  const char* env = std::getenv("MLA_SIMD");
  if (env == nullptr || *env == '\0') return supported;
  const std::optional<SimdLevel> wanted = simd_level_from_name(env);
  if (!wanted) {
    // A typo must not silently run the default kernels the user wanted to avoid.
    std::fprintf(stderr, "mla: ignoring MLA_SIMD=%s (expected scalar, avx2, avx512, avx512bf16)\n",
                 env);
    return supported;
  }
  return std::min(*wanted, supported);
}

// -1: not decided yet; the environment is read on first use.
std::atomic<int> g_level{-1};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

SimdLevel supported_simd_level() {
  return level_of(cpu_features());
}

SimdLevel simd_level() {
  int level = g_level.load(std::memory_order_relaxed);
  if (level < 0) {
    level = static_cast<int>(level_from_env());
    g_level.store(level, std::memory_order_relaxed);
  }
  return static_cast<SimdLevel>(level);
}

SimdLevel set_simd_level(std::optional<SimdLevel> level) {
  const SimdLevel effective = level ? std::min(*level, supported_simd_level()) : level_from_env();
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
