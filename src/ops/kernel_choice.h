// Which implementation each kernel family runs, chosen by measuring the candidates on this
// machine. The fastest instruction set is not always the fastest kernel: on an Intel Xeon whose
// VDPBF16PS runs at half the float32 FMA rate the AVX-512 widening kernels beat the bf16 dot
// kernels, on AMD Zen 5 the dot kernels win by 2x (docs/performance.md). So, per family, every
// candidate the CPU supports runs once on a small problem (a few milliseconds in all, on the
// first call that needs the family, once per process, thread-safe) and the fastest is kept;
// the highest candidate stays unless another is more than kMargin faster, so noise does not
// flip the choice between near-equal kernels.
//
// Overrides, strongest first: set_simd_level(level) or MLA_SIMD=level hold every family to the
// best candidate at or below that level (no measurement: the tests' way of running one path);
// set_kernel_variant(family, variant) pins one family.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mla/dtype.h"
#include "ops/cpu_features.h"

namespace mla::ops {

enum class KernelFamily {
  kLatentF32,   // fused latent attention, float32 cache (ops/latent_attention.h)
  kLatentBf16,  // the same with a bf16 cache
  kLatentFp8,   // the same with an fp8 e4m3 cache (mla/quantized_row.h)
  kLatentInt8,  // the same with an int8 cache
  kSkinnyF32,   // few-row products with float32 weights (ops/skinny.h)
  kSkinnyBf16,  // few-row products with bf16 weights
  kGemmBf16,    // larger products with bf16 weights (ops/linear_bf16.h): oneDNN or widen + sgemm
};
inline constexpr KernelFamily kKernelFamilies[] = {
    KernelFamily::kLatentF32,  KernelFamily::kLatentBf16, KernelFamily::kLatentFp8,
    KernelFamily::kLatentInt8, KernelFamily::kSkinnyF32,  KernelFamily::kSkinnyBf16,
    KernelFamily::kGemmBf16};

// Variants of kGemmBf16 (the SIMD families' variants are their SimdLevel values).
inline constexpr int kGemmWidenSgemm = 0;
inline constexpr int kGemmOnednnBf16 = 1;

struct KernelCandidate {
  int variant = 0;
  std::string name;     // e.g. "avx512-widen", "avx512bf16-dot"
  double gflops = 0.0;  // measured on the calibration problem, one thread (0: not measured)
};

struct KernelChoiceReport {
  std::string family;
  std::string problem;  // the calibration problem, in words
  std::vector<KernelCandidate> candidates;
  int chosen = 0;
  std::string how;  // "measured", "MLA_SIMD / set_simd_level", "set_kernel_variant"
  double calibration_ms = 0.0;
};

// A candidate is kept unless another is this much faster (fraction).
inline constexpr double kMargin = 0.10;

// The variant the family runs now (measures the family on first use unless overridden).
int kernel_variant(KernelFamily family);
// The SIMD level of a SIMD family's variant (kGemmBf16: not a level; do not call).
inline SimdLevel kernel_level(KernelFamily family) {
  return static_cast<SimdLevel>(kernel_variant(family));
}
// Measures the family if it has not been measured yet (even when overridden) and describes it.
KernelChoiceReport kernel_choice_report(KernelFamily family);
// Pins the family to `variant` (clamped to what the CPU supports); std::nullopt: back to the
// measured choice. Returns the variant now in effect. Not while kernels run on other threads.
int set_kernel_variant(KernelFamily family, std::optional<int> variant);

// The fused latent kernel's family for a cache of this storage (F32, BF16, F8_E4M3, I8).
KernelFamily latent_family(DType cache);

std::string_view kernel_family_name(KernelFamily family);
std::string kernel_variant_name(KernelFamily family, int variant);

// Measures one kGemmBf16 variant (ops/linear_bf16.cc); GFLOP/s, 0 when it cannot run here.
double measure_gemm_bf16_variant(int variant);

}  // namespace mla::ops
