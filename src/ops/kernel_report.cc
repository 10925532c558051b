#include "mla/kernels.h"
#include "ops/cpu_features.h"
#include "ops/kernel_choice.h"
#include "ops/linear_bf16.h"

namespace mla {

CpuReport cpu_report() {
  const ops::CpuFeatures& f = ops::cpu_features();
  CpuReport r;
  r.model = ops::cpu_model_name();
  const auto add = [&r](bool on, const char* name) {
    if (!on) return;
    if (!r.isa.empty()) r.isa += ' ';
    r.isa += name;
  };
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx2, "avx2");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512bf16, "avx512_bf16");
  add(f.avx512fp16, "avx512_fp16");
  add(f.amx_tile, "amx_tile");
  add(f.amx_bf16, "amx_bf16");
  add(f.amx_int8, "amx_int8");
  r.simd_level = std::string(ops::simd_level_name(ops::simd_level()));
  r.simd_forced = ops::simd_level_forced();
  r.amx = f.amx_bf16;
  r.amx_status = f.amx_status;
  r.onednn_isa = ops::onednn_cpu_isa();
  return r;
}

std::vector<KernelFamilyReport> kernel_reports() {
  std::vector<KernelFamilyReport> out;
  for (ops::KernelFamily f : ops::kKernelFamilies) {
    const ops::KernelChoiceReport r = ops::kernel_choice_report(f);
    KernelFamilyReport k;
    k.family = r.family;
    k.problem = r.problem;
    for (const ops::KernelCandidate& c : r.candidates) k.candidates.push_back({c.name, c.gflops});
    k.chosen = ops::kernel_variant_name(f, r.chosen);
    k.how = r.how;
    k.calibration_ms = r.calibration_ms;
    out.push_back(k);
  }
  return out;
}

}  // namespace mla
