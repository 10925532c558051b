// The CPU and the kernel each family runs on it, chosen by measurement (src/ops/kernel_choice.h):
// what `mla info --cpu` prints and `mla bench --json` records.
#pragma once

#include <string>
#include <vector>

namespace mla {

struct CpuReport {
  std::string model;         // CPUID brand string, e.g. "AMD EPYC"
  std::string isa;           // detected flags: "fma avx2 avx512f ... avx512_bf16 amx_bf16"
  std::string simd_level;    // scalar, avx2, avx512, avx512bf16, amx
  bool simd_forced = false;  // MLA_SIMD (or set_simd_level) holds the kernels
  bool amx = false;          // AMX-BF16 tiles reported by CPUID
  std::string
      amx_status;  // "not present", "present, permitted", "present, refused by the OS (...)"
  std::string onednn_isa;  // oneDNN's effective ISA, e.g. "avx512_core_amx" (prefill's bf16 matmul)
};

struct KernelCandidateReport {
  std::string name;     // e.g. "avx512-widen", "avx512bf16-dot", "onednn-bf16"
  double gflops = 0.0;  // on the calibration problem, one thread
};

struct KernelFamilyReport {
  std::string family;   // e.g. "latent-attention-bf16-cache"
  std::string problem;  // the calibration problem, in words
  std::vector<KernelCandidateReport> candidates;
  std::string chosen;
  std::string how;  // "measured", "MLA_SIMD / set_simd_level (...)", "set_kernel_variant"
  double calibration_ms = 0.0;
};

CpuReport cpu_report();
// Every family; measures those not measured yet in this process (a few ms each).
std::vector<KernelFamilyReport> kernel_reports();

}  // namespace mla
