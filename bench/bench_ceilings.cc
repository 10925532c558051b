// This machine's ceilings: FMA peak (f32, per instruction set), bf16 dot peak (VDPBF16PS),
// oneDNN sgemm at 4096^3 and memory read bandwidth, on 1 and 2 threads. Run:
//   ./build/bench/bench_ceilings --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <omp.h>

#include <vector>

#include "ops/gemm.h"
#include "perf/ceilings.h"

namespace {

using benchmark::Counter;

void set_threads(benchmark::State& state, int threads) {
  omp_set_num_threads(threads);
  state.counters["threads"] = threads;
}

// A register-only loop on every thread; `loop` returns 0 when the CPU lacks its ISA.
void peak(benchmark::State& state, double (*loop)(int64_t), const char* what) {
  const int threads = static_cast<int>(state.range(0));
  set_threads(state, threads);
  double flops = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    flops += loop(20'000'000);
  }
  if (flops == 0) state.SkipWithError(what);
  state.counters["GFLOP/s"] = Counter(flops * 1e-9, Counter::kIsRate);
}

void BM_FmaPeakAvx512(benchmark::State& state) {
  peak(state, mla::perf::fma_loop_avx512, "no AVX-512 on this CPU");
}
BENCHMARK(BM_FmaPeakAvx512)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_FmaPeakAvx2(benchmark::State& state) {
  peak(state, mla::perf::fma_loop_avx2, "no AVX2+FMA on this CPU");
}
BENCHMARK(BM_FmaPeakAvx2)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_DotPeakBf16(benchmark::State& state) {
  peak(state, mla::perf::dot_loop_bf16, "no AVX512-BF16 on this CPU");
}
BENCHMARK(BM_DotPeakBf16)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SgemmOneDnn(benchmark::State& state) {
  const int64_t n = state.range(0);
  set_threads(state, static_cast<int>(state.range(1)));
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  for (auto _ : state)
    mla::ops::gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  state.counters["GFLOP/s"] = Counter(2.0 * n * n * n * 1e-9, Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SgemmOneDnn)
    ->Args({4096, 1})
    ->Args({4096, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_ReadBandwidth(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(0)));
  const int64_t n = int64_t{1} << 27;  // 512 MiB of floats: far beyond every cache
  std::vector<float> data(n, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(mla::perf::read_sum(data.data(), n));
  state.counters["GB/s"] = Counter(n * 4.0 * 1e-9, Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
