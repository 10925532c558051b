#include "kernel_report.h"

#include <string>

#include "ops/cpu_features.h"
#include "ops/kernel_choice.h"

namespace mla::cli {
namespace {

std::string isa_flags() {
  const ops::CpuFeatures& f = ops::cpu_features();
  std::string s;
  const auto add = [&s](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.fma, "fma");
  add(f.avx2, "avx2");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512bf16, "avx512_bf16");
  add(f.avx512fp16, "avx512_fp16");
  add(f.amx_tile, "amx_tile");
  add(f.amx_bf16, "amx_bf16");
  add(f.amx_int8, "amx_int8");
  return s.empty() ? "(none of the above)" : s;
}

}  // namespace

void print_cpu_report(std::FILE* out) {
  const std::string model = ops::cpu_model_name();
  std::fprintf(out, "cpu: %s\n", model.empty() ? "(no brand string)" : model.c_str());
  std::fprintf(out, "isa: %s\n", isa_flags().c_str());
  std::fprintf(out, "amx: %s\n",
               ops::cpu_features().amx_bf16 ? "present (no kernel uses it yet)" : "not present");
  std::fprintf(out, "simd level: %s%s\n",
               std::string(ops::simd_level_name(ops::simd_level())).c_str(),
               ops::simd_level_forced() ? " (forced by MLA_SIMD)" : "");
  std::fprintf(out, "\nkernels (candidates measured once per process, GFLOP/s):\n");
  for (ops::KernelFamily f : ops::kKernelFamilies) {
    const ops::KernelChoiceReport r = ops::kernel_choice_report(f);
    std::fprintf(out, "  %s [%s; %.1f ms]\n", r.family.c_str(), r.problem.c_str(),
                 r.calibration_ms);
    for (const ops::KernelCandidate& c : r.candidates)
      std::fprintf(out, "    %-18s %8.1f%s\n", c.name.c_str(), c.gflops,
                   c.variant == r.chosen ? "  <- chosen" : "");
    std::fprintf(out, "    chosen: %s (%s)\n", ops::kernel_variant_name(f, r.chosen).c_str(),
                 r.how.c_str());
  }
}

nlohmann::json cpu_report_json() {
  nlohmann::json j;
  j["cpu"] = ops::cpu_model_name();
  j["isa"] = isa_flags();
  j["simd_level"] = std::string(ops::simd_level_name(ops::simd_level()));
  nlohmann::json kernels = nlohmann::json::object();
  for (ops::KernelFamily f : ops::kKernelFamilies) {
    const ops::KernelChoiceReport r = ops::kernel_choice_report(f);
    nlohmann::json candidates = nlohmann::json::object();
    for (const ops::KernelCandidate& c : r.candidates) candidates[c.name] = c.gflops;
    kernels[r.family] = {{"chosen", ops::kernel_variant_name(f, r.chosen)},
                         {"how", r.how},
                         {"calibration_ms", r.calibration_ms},
                         {"candidates_gflops", candidates}};
  }
  j["kernels"] = kernels;
  return j;
}

}  // namespace mla::cli
