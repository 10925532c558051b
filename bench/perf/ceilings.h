// This machine's limits, measured in the same run as the kernels: FMA peak (f32), bf16 dot
// peak, memory read bandwidth. The SIMD loops are compiled per instruction set (function
// target attributes) and run only when the CPU has it.
#pragma once

#include <cstdint>

namespace mla::perf {

// FLOPs done by `iters` rounds of a register-only loop on this thread: FMA counts 2 per lane,
// VDPBF16PS 4 per f32 lane (two products, two adds). Return 0 when the CPU lacks the ISA.
double fma_loop_avx512(int64_t iters);
double fma_loop_avx2(int64_t iters);
double dot_loop_bf16(int64_t iters);

// Peak GFLOP/s of `threads` threads running the best loop above together (measured once per
// thread count, the best of 100 short rounds of the whole team, then cached): float32 FMA and
// bf16 dot product.
double f32_peak_gflops(int threads);
double bf16_peak_gflops(int threads);

// Read bandwidth in GB/s of the current OpenMP thread count summing a 512 MiB buffer (far
// beyond every cache), best of several passes.
double read_bandwidth_gbs();

// Sums `n` floats (bandwidth probe) in a parallel loop of the current OpenMP thread count; returns
// the sum so the loop is not optimised away.
float read_sum(const float* data, int64_t n);

}  // namespace mla::perf
