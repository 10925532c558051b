// This machine's limits, measured in the same run as the kernels: FMA peak (f32), bf16 dot
// peak, memory read bandwidth. The SIMD loops are compiled per instruction set and chosen at
// run time.
#pragma once

#include <cstdint>

namespace mla::bench {

// FLOPs done by `iters` rounds of the register-only FMA loop on this thread (2 per lane FMA);
// returns 0 when the CPU lacks the instruction set.
double fma_loop_f32(int64_t iters);
double dot_loop_bf16(int64_t iters);
const char* simd_name();  // "avx512" or "avx2"
// Sums `n` floats (bandwidth probe); returns the sum so the loop is not optimised away.
float read_sum(const float* data, int64_t n);

}  // namespace mla::bench
