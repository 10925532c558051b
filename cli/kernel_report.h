// The CPU and the kernels chosen for it (ops/kernel_choice.h), as `mla info --cpu` prints them
// and as `mla bench --json` records them.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>

namespace mla::cli {

// Model name, ISA flags, the SIMD level, and per kernel family its candidates with their
// measured GFLOP/s and the choice. Measures every family not measured yet (a few ms).
void print_cpu_report(std::FILE* out);
// {"cpu": ..., "simd_level": ..., "kernels": {family: {"chosen", "how", "candidates": {...}}}}
nlohmann::json cpu_report_json();

}  // namespace mla::cli
