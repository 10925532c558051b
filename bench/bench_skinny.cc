// The few-row products (ops/skinny.h) at the AVX-512 level on one thread, with x on a cache line
// or 16 bytes off it: weights in L2 (1024 x 128) or streamed from memory (7168 x 1536, V3's
// q_a_proj), 1 and 8 rows. Calls the kernel directly, so the figure is the kernel's own (the
// library's skinny_linear aligns a misaligned x before calling it).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "ops/cache_line_vector.h"
#include "ops/cpu_features.h"
#include "ops/simd/skinny_kernels.h"

namespace {

void BM_SkinnyF32(benchmark::State& state) {
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  const int64_t offset = state.range(3);  // floats past a cache line
  if (mla::ops::supported_simd_level() < mla::ops::SimdLevel::kAvx512) {
    state.SkipWithError("no AVX-512 here");
    return;
  }
  mla::ops::CacheLineVector<float> x(static_cast<size_t>(rows * in + offset), 1.0f);
  std::vector<float> w(static_cast<size_t>(in * out), 0.01f), y(static_cast<size_t>(rows * out));
  for (auto _ : state) {
    mla::ops::simd::skinny_f32_avx512(x.data() + offset, rows, in, w.data(), 0, out, y.data(), out);
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

}  // namespace

BENCHMARK(BM_SkinnyF32)
    ->ArgNames({"rows", "in", "out", "x_offset"})
    ->ArgsProduct({{1, 8}, {1024}, {128}, {0, 4}})
    ->ArgsProduct({{1, 8}, {7168}, {1536}, {0, 4}})
    ->UseRealTime();

BENCHMARK_MAIN();
