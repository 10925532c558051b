#include "kernel_report.h"

#include <string>

#include "mla/kernels.h"

namespace mla::cli {

void print_cpu_report(std::FILE* out) {
  const CpuReport cpu = cpu_report();
  std::fprintf(out, "cpu: %s\n", cpu.model.empty() ? "(no brand string)" : cpu.model.c_str());
  std::fprintf(out, "isa: %s\n", cpu.isa.empty() ? "(none of the above)" : cpu.isa.c_str());
  std::fprintf(out, "amx: %s\n", cpu.amx_status.c_str());
  std::fprintf(out, "onednn isa: %s\n", cpu.onednn_isa.c_str());
  std::fprintf(out, "simd level: %s%s\n", cpu.simd_level.c_str(),
               cpu.simd_forced ? " (forced by MLA_SIMD)" : "");
  std::fprintf(out, "\nkernels (candidates measured once per process, GFLOP/s):\n");
  for (const KernelFamilyReport& r : kernel_reports()) {
    std::fprintf(out, "  %s [%s; %.1f ms]\n", r.family.c_str(), r.problem.c_str(),
                 r.calibration_ms);
    for (const KernelCandidateReport& c : r.candidates)
      std::fprintf(out, "    %-18s %8.1f%s\n", c.name.c_str(), c.gflops,
                   c.name == r.chosen ? "  <- chosen" : "");
    std::fprintf(out, "    chosen: %s (%s)\n", r.chosen.c_str(), r.how.c_str());
  }
}

nlohmann::json cpu_report_json() {
  const CpuReport cpu = cpu_report();
  nlohmann::json j;
  j["cpu"] = cpu.model;
  j["isa"] = cpu.isa;
  j["simd_level"] = cpu.simd_level;
  j["amx"] = cpu.amx_status;
  j["onednn_isa"] = cpu.onednn_isa;
  nlohmann::json kernels = nlohmann::json::object();
  for (const KernelFamilyReport& r : kernel_reports()) {
    nlohmann::json candidates = nlohmann::json::object();
    for (const KernelCandidateReport& c : r.candidates) candidates[c.name] = c.gflops;
    kernels[r.family] = {{"chosen", r.chosen},
                         {"how", r.how},
                         {"calibration_ms", r.calibration_ms},
                         {"candidates_gflops", candidates}};
  }
  j["kernels"] = kernels;
  return j;
}

}  // namespace mla::cli
