// Which SIMD instruction sets this CPU (and its OS) can run, detected once at run time, and the
// level the kernels use. Nothing is compiled for the build machine (no -march=native): each
// kernel is built for several instruction sets and the fastest supported one is picked here.
// MLA_SIMD=scalar|avx2|avx512|avx512bf16|amx in the environment, or set_simd_level() from a test,
// holds the kernels to a lower level; a request above what the CPU supports is clamped.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "mla/enum_names.h"

namespace mla::ops {

struct CpuFeatures {
  bool fma = false;
  bool f16c = false;  // VCVTPH2PS: the AVX2 kernels decode fp8 caches through fp16
  bool avx2 = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512bf16 = false;
  // Reported only (`mla info --cpu`); no kernel uses it yet.
  bool avx512fp16 = false;
  // What CPUID reports (amx_bf16 also needs amx_tile); whether tiles can run is amx_usable.
  bool amx_tile = false;
  bool amx_bf16 = false;
  bool amx_int8 = false;
  // AMX-BF16 reported, the OS saves tile state (XCR0) and Linux granted it to this process
  // (ops/amx_permission.h): only then may a tile instruction run.
  bool amx_usable = false;
  std::string amx_status;  // "not present", "present, permitted", "present, refused by ..."
};

// Ordered: each level needs everything below it.
//   kAvx2: AVX2 + FMA + F16C.  kAvx512: AVX-512 F/BW/VL (+ FMA); a bf16 cache is widened to
//   float32. kAvx512Bf16: also AVX512_BF16, whose VDPBF16PS multiplies bf16 pairs with float32
//   sums. kAmx: also usable AMX-BF16 tiles; only the skinny bf16-weight products have an AMX
//   kernel, every other family runs its AVX512_BF16 (or AVX-512) kernel there.
enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Bf16 = 3, kAmx = 4 };
inline constexpr EnumName<SimdLevel> kSimdLevelNames[] = {{SimdLevel::kScalar, "scalar"},
                                                          {SimdLevel::kAvx2, "avx2"},
                                                          {SimdLevel::kAvx512, "avx512"},
                                                          {SimdLevel::kAvx512Bf16, "avx512bf16"},
                                                          {SimdLevel::kAmx, "amx"}};
constexpr std::span<const EnumName<SimdLevel>> enum_names(SimdLevel) {
  return kSimdLevelNames;
}

const CpuFeatures& cpu_features();
// The CPU's brand string (CPUID 0x80000002-4), e.g. "AMD EPYC 9B45"; "" when it has none.
std::string cpu_model_name();
// The best level this CPU supports.
SimdLevel supported_simd_level();
// The level kernels use now: the supported one, lowered by MLA_SIMD or set_simd_level().
SimdLevel simd_level();
// Holds kernels to min(level, supported); std::nullopt goes back to MLA_SIMD / the default.
// Returns the level now in effect. Not meant to be called while kernels run on other threads.
SimdLevel set_simd_level(std::optional<SimdLevel> level);
// Whether the level was asked for (MLA_SIMD or set_simd_level) rather than left to the CPU;
// then every kernel family runs the best candidate at or below it, unmeasured
// (ops/kernel_choice.h).
bool simd_level_forced();

std::string_view simd_level_name(SimdLevel level);
std::optional<SimdLevel> simd_level_from_name(std::string_view name);

}  // namespace mla::ops
