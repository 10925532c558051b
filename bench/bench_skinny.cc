// The few-row products (ops/skinny.h) at the AVX-512 level on one thread, with x on a cache line
// or 16 bytes off it: weights in L2 (1024 x 128) or streamed from memory (7168 x 1536, V3's
// q_a_proj), 1 and 8 rows; and bf16 weights through VDPBF16PS against AMX tiles. Calls the kernel
// directly, so the figure is the kernel's own (the library's skinny_linear aligns a misaligned x
// before calling it).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
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

// bf16 weights: VDPBF16PS (kernel 0) against AMX-BF16 tiles (kernel 1, only where the OS granted
// them; x packed into the tiles' pair layout once per call, as skinny_linear_bf16 does).
void BM_SkinnyBf16(benchmark::State& state) {
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  const bool amx = state.range(3) == 1;
  if (amx && !mla::ops::cpu_features().amx_usable) {
    state.SkipWithError(("no usable AMX here: " + mla::ops::cpu_features().amx_status).c_str());
    return;
  }
  if (mla::ops::supported_simd_level() < mla::ops::SimdLevel::kAvx512Bf16) {
    state.SkipWithError("no AVX512_BF16 here");
    return;
  }
  mla::ops::CacheLineVector<uint16_t> x(static_cast<size_t>(rows * in), 0x3f80);  // 1.0
  mla::ops::CacheLineVector<uint16_t> pairs(
      static_cast<size_t>(mla::ops::simd::amx_pairs_size(rows, in)));
  std::vector<uint16_t> w(static_cast<size_t>(in * out), 0x3c23);  // ~0.01
  std::vector<float> y(static_cast<size_t>(rows * out));
  for (auto _ : state) {
    if (amx) {
      mla::ops::simd::pack_amx_pairs(x.data(), rows, in, pairs.data());
      mla::ops::simd::skinny_bf16_amx(pairs.data(), rows, in, w.data(), 0, out, y.data(), out);
    } else {
      mla::ops::simd::skinny_bf16_dot_avx512bf16(x.data(), rows, in, w.data(), 0, out, y.data(),
                                                 out);
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(rows * in * out);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

}  // namespace

BENCHMARK(BM_SkinnyBf16)
    ->ArgNames({"rows", "in", "out", "amx"})
    ->ArgsProduct({{1, 8}, {1024}, {128}, {0, 1}})
    ->ArgsProduct({{1, 8}, {7168}, {1536}, {0, 1}})
    ->UseRealTime();

BENCHMARK(BM_SkinnyF32)
    ->ArgNames({"rows", "in", "out", "x_offset"})
    ->ArgsProduct({{1, 8}, {1024}, {128}, {0, 4}})
    ->ArgsProduct({{1, 8}, {7168}, {1536}, {0, 4}})
    ->UseRealTime();

BENCHMARK_MAIN();
