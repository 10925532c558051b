// Kernels against this machine's ceilings, in one run. FLOPs come from mla-math.md:
// decode attention per token H * L * (2 (R + Dr) + 2 R). Run:
//   ./build/bench/bench_kernels --benchmark_counters_tabular=true
// Arguments of the attention benchmarks: heads, context, batch, threads, bf16 cache (0/1).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "ceilings.h"
#include "mla/dtype.h"
#include "ops/flash_attention.h"
#include "ops/gemm.h"

namespace {

using benchmark::Counter;

void set_threads(benchmark::State& state, int threads) {
  omp_set_num_threads(threads);
  state.counters["threads"] = threads;
}

void BM_FmaPeakF32(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  set_threads(state, threads);
  double flops = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    flops += mla::bench::fma_loop_f32(20'000'000);
  }
  state.counters["GFLOP/s"] = Counter(flops * 1e-9, Counter::kIsRate);
  state.SetLabel(mla::bench::simd_name());
}
BENCHMARK(BM_FmaPeakF32)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_DotPeakBf16(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  set_threads(state, threads);
  double flops = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    flops += mla::bench::dot_loop_bf16(20'000'000);
  }
  if (flops == 0) state.SkipWithError("no AVX512-BF16 on this CPU");
  state.counters["GFLOP/s"] = Counter(flops * 1e-9, Counter::kIsRate);
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
    ->Args({2048, 1})
    ->Args({2048, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_ReadBandwidth(benchmark::State& state) {
  set_threads(state, static_cast<int>(state.range(0)));
  const int64_t n = int64_t{1} << 27;  // 512 MiB of floats: far beyond every cache
  std::vector<float> data(n, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(mla::bench::read_sum(data.data(), n));
  state.counters["GB/s"] = Counter(n * 4.0 * 1e-9, Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Absorbed decode attention alone: one new token per sequence over L cached latent rows.
void BM_LatentDecode(benchmark::State& state) {
  const int64_t heads = state.range(0), context = state.range(1), batch = state.range(2);
  set_threads(state, static_cast<int>(state.range(3)));
  const bool bf16 = state.range(4) != 0;
  const int64_t r = 512, dr = 64, w = r + dr;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(batch * heads * w), out(batch * heads * r), rows(batch * context * w);
  for (float& v : q) v = normal(rng) * 0.05f;
  for (float& v : rows) v = normal(rng);
  std::vector<uint16_t> rows_bf16;
  if (bf16) {
    rows_bf16.resize(rows.size());
    mla::convert_from_f32(rows.data(), rows.size(), mla::DType::kBF16, rows_bf16.data());
    rows.clear();
    rows.shrink_to_fit();
  }
  std::vector<mla::ops::AttentionParams> params;
  for (int64_t b = 0; b < batch; ++b) {
    mla::ops::AttentionParams p;
    p.k.base = bf16 ? static_cast<const void*>(rows_bf16.data() + b * context * w)
                    : static_cast<const void*>(rows.data() + b * context * w);
    p.k.token_stride = w;
    p.k.dtype = bf16 ? mla::DType::kBF16 : mla::DType::kF32;
    p.v = p.k;  // absorbed MLA: the value is the first R entries of the latent row
    p.q = q.data() + b * heads * w;
    p.q_token_stride = heads * w;
    p.q_head_stride = w;
    p.out = out.data() + b * heads * r;
    p.out_token_stride = heads * r;
    p.out_head_stride = r;
    p.num_queries = 1;
    p.num_heads = heads;
    p.num_kv_heads = 1;
    p.qk_dim = w;
    p.v_dim = r;
    p.context_before = context - 1;
    p.scale = 0.07f;
    params.push_back(p);
  }
  mla::ops::FlashWorkspace ws;
  for (auto _ : state) mla::ops::flash_attention(params, ws);
  const double flops = static_cast<double>(batch * heads * context) * (2.0 * w + 2.0 * r);
  state.counters["GFLOP/s"] = Counter(flops * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["cache_GB/s"] =
      Counter(static_cast<double>(batch * context * w) * (bf16 ? 2 : 4) * 1e-9,
              Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LatentDecode)
    ->ArgsProduct({{16, 128}, {1024, 4096, 16384}, {1, 8}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
