// Attention kernels against this machine's ceilings. FLOPs per mla-math.md: absorbed decode
// attention does H * L * (2 (R + Dr) + 2 R) per token (L keys seen). Run:
//   ./build/bench/bench_attention --benchmark_counters_tabular=true
// Arguments of the decode benchmarks: heads, context, batch, threads, bf16 cache (0/1); for
// BM_LatentDecodeCache the cache is 0 f32, 1 bf16, 2 fp8, 3 int8 (mla/quantized_row.h). The
// pct_peak counter divides by the FMA peak (float32 arithmetic) or the VDPBF16PS peak (the
// bf16 dot kernels) of the same thread count, measured in this run (bench/perf/ceilings.h).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mla/dtype.h"
#include "mla/kv_cache.h"
#include "mla/layer.h"
#include "mla/quantized_row.h"
#include "ops/attention.h"
#include "ops/cache_line_vector.h"
#include "ops/cpu_features.h"
#include "ops/flash_attention.h"
#include "ops/kernel_choice.h"
#include "ops/latent_attention.h"
#include "perf/ceilings.h"

namespace {

using benchmark::Counter;
constexpr int64_t kRank = 512, kRope = 64, kWidth = kRank + kRope;

// One new token per sequence over `context` cached latent rows, as the layer lays them out.
// The rows start on a cache line, as the layer's PagedKvPool stores them (a malloc'd vector
// starts 16 bytes into a line, so every row of whole lines would straddle one more).
struct DecodeSetup {
  std::vector<float> q, out;
  mla::ops::CacheLineVector<float> rows;
  mla::ops::CacheLineVector<uint16_t> rows_bf16;
  mla::ops::CacheLineVector<unsigned char> rows_quant;
  std::vector<std::vector<const void*>> page_tables;
  std::vector<mla::ops::AttentionParams> params;

  // page > 0: the rows read through a page table of `page` tokens per page (as the layer's
  // PagedKvPool lays them out), the pages still consecutive in memory.
  DecodeSetup(int64_t heads, int64_t context, int64_t batch, mla::DType cache, int64_t queries = 1,
              int64_t page = 0)
      : q(batch * queries * heads * kWidth),
        out(batch * queries * heads * kRank),
        rows(batch * (context + queries - 1) * kWidth) {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : q) v = normal(rng);
    for (float& v : rows) v = normal(rng);
    const int64_t keys = context + queries - 1;
    // Elements (bytes for quantized rows) per token, and the start of each sequence's rows.
    int64_t stride = kWidth;
    const void* data = rows.data();
    int64_t elem = 4;
    if (cache == mla::DType::kBF16) {
      rows_bf16.resize(rows.size());
      mla::convert_from_f32(rows.data(), rows.size(), mla::DType::kBF16, rows_bf16.data());
      rows = {};
      data = rows_bf16.data();
      elem = 2;
    } else if (mla::is_quantized_cache_dtype(cache)) {
      stride = mla::quantized_row_bytes(kRank, kRope);
      const int64_t n = batch * keys;
      rows_quant.resize(static_cast<size_t>(n * stride));
      for (int64_t j = 0; j < n; ++j)
        mla::quantize_row(rows.data() + j * kWidth, kRank, kRope, cache,
                          rows_quant.data() + j * stride);
      rows = {};
      data = rows_quant.data();
      elem = 1;
    }
    for (int64_t b = 0; b < batch; ++b) {
      mla::ops::AttentionParams p;
      p.k.base = static_cast<const char*>(data) + b * keys * stride * elem;
      p.k.token_stride = stride;
      p.k.dtype = cache;
      if (page > 0) {
        std::vector<const void*>& table = page_tables.emplace_back();
        for (int64_t j = 0; j < keys; j += page)
          table.push_back(static_cast<const char*>(p.k.base) + j * stride * elem);
        p.k.pages = table.data();
        p.k.page_size = page;
      }
      p.v = p.k;  // absorbed MLA: the value is the first R entries of the latent row
      p.q = q.data() + b * queries * heads * kWidth;
      p.q_token_stride = heads * kWidth;
      p.q_head_stride = kWidth;
      p.out = out.data() + b * queries * heads * kRank;
      p.out_token_stride = heads * kRank;
      p.out_head_stride = kRank;
      p.num_queries = queries;
      p.num_heads = heads;
      p.qk_dim = kWidth;
      p.v_dim = kRank;
      p.context_before = context - 1;
      p.scale = 1.0f / 24.0f;
      params.push_back(p);
    }
  }
};

void report(benchmark::State& state, double flops, double cache_bytes, bool bf16, int threads) {
  state.counters["GFLOP/s"] = Counter(flops * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["cache_GB/s"] = Counter(cache_bytes * 1e-9, Counter::kIsIterationInvariantRate);
  const double peak =
      bf16 ? mla::perf::bf16_peak_gflops(threads) : mla::perf::f32_peak_gflops(threads);
  if (peak > 0)
    state.counters["pct_peak"] =
        Counter(flops * 1e-9 * 100.0 / peak, Counter::kIsIterationInvariantRate);
}

// Bytes per cached token of a latent row in `cache`'s storage.
double row_bytes(mla::DType cache) {
  if (mla::is_quantized_cache_dtype(cache))
    return static_cast<double>(mla::quantized_row_bytes(kRank, kRope));
  return static_cast<double>(kWidth) * (cache == mla::DType::kBF16 ? 2 : 4);
}

template <bool kFused>
void decode(benchmark::State& state, mla::DType cache, int64_t page = 0) {
  const int64_t heads = state.range(0), context = state.range(1), batch = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  omp_set_num_threads(threads);
  DecodeSetup setup(heads, context, batch, cache, 1, page);
  mla::ops::LatentWorkspace latent_ws;
  mla::ops::FlashWorkspace flash_ws;
  for (auto _ : state) {
    if constexpr (kFused) {
      mla::ops::latent_attention(setup.params, latent_ws);
    } else {
      mla::ops::flash_attention(setup.params, flash_ws);
    }
  }
  const double flops = static_cast<double>(batch * heads * context) * (2.0 * kWidth + 2.0 * kRank);
  // The kernel the measured choice (or the forced level) ran, e.g. "avx512bf16-dot".
  const auto family = mla::ops::latent_family(cache);
  const std::string kernel =
      kFused ? mla::ops::kernel_variant_name(family, mla::ops::kernel_variant(family)) : "onednn";
  const bool dot = kernel.ends_with("-dot") || (!kFused && cache == mla::DType::kBF16);
  report(state, flops, static_cast<double>(batch * context) * row_bytes(cache), dot, threads);
  state.SetLabel(kernel);
}

mla::DType bf16_arg(const benchmark::State& state, int index) {
  return state.range(index) != 0 ? mla::DType::kBF16 : mla::DType::kF32;
}

// The fused kernel (ops/latent_attention.h), its variant chosen by measurement (kernel_choice.h).
void BM_LatentDecode(benchmark::State& state) {
  decode<true>(state, bf16_arg(state, 4));
}
BENCHMARK(BM_LatentDecode)
    ->ArgNames({"heads", "ctx", "batch", "thr", "bf16"})
    ->ArgsProduct({{16, 128}, {1024, 4096, 16384}, {1, 8}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Every cache storage side by side (0 f32, 1 bf16, 2 fp8 e4m3, 3 int8; the quantized rows are
// DeepSeek-V3.2's 656 bytes), cache_GB/s counting the bytes each really reads; page 0 reads
// the rows contiguously, page 64 through a page table as the layer does.
void BM_LatentDecodeCache(benchmark::State& state) {
  constexpr mla::DType kCaches[] = {mla::DType::kF32, mla::DType::kBF16, mla::DType::kF8E4M3,
                                    mla::DType::kI8};
  decode<true>(state, kCaches[state.range(4)], state.range(5));
}
BENCHMARK(BM_LatentDecodeCache)
    ->ArgNames({"heads", "ctx", "batch", "thr", "cache", "page"})
    ->ArgsProduct({{16, 128}, {4096, 16384}, {1}, {1, 2}, {0, 1, 2, 3}, {0, 64}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The earlier tiled kernel built on oneDNN sgemm (ops/flash_attention.h), for comparison.
void BM_FlashDecode(benchmark::State& state) {
  decode<false>(state, bf16_arg(state, 4));
}
BENCHMARK(BM_FlashDecode)
    ->ArgNames({"heads", "ctx", "batch", "thr", "bf16"})
    ->ArgsProduct({{16, 128}, {4096}, {1, 8}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The fused kernel held to each SIMD level (0 scalar, 1 avx2, 2 avx512, 3 avx512bf16).
void BM_LatentDecodeLevel(benchmark::State& state) {
  const auto level = static_cast<mla::ops::SimdLevel>(state.range(5));
  if (mla::ops::set_simd_level(level) != level) {
    mla::ops::set_simd_level(std::nullopt);
    state.SkipWithError("this CPU lacks the SIMD level");
    return;
  }
  decode<true>(state, bf16_arg(state, 4));
  mla::ops::set_simd_level(std::nullopt);
}
BENCHMARK(BM_LatentDecodeLevel)
    ->ArgNames({"heads", "ctx", "batch", "thr", "bf16", "level"})
    ->ArgsProduct({{128}, {4096}, {1}, {1, 2}, {0, 1}, {1, 2, 3}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Causal prefill of `tokens` new tokens after `context` cached ones, one sequence.
void BM_LatentPrefill(benchmark::State& state) {
  const int64_t heads = state.range(0), tokens = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const bool bf16 = state.range(3) != 0;
  omp_set_num_threads(threads);
  DecodeSetup setup(heads, 1, 1, bf16_arg(state, 3), tokens);
  mla::ops::LatentWorkspace ws;
  for (auto _ : state) mla::ops::latent_attention(setup.params, ws);
  // Token t sees t + 1 keys: sum = tokens (tokens + 1) / 2.
  const double seen = static_cast<double>(tokens) * static_cast<double>(tokens + 1) / 2.0;
  report(state, heads * seen * (2.0 * kWidth + 2.0 * kRank),
         static_cast<double>(tokens * kWidth) * (bf16 ? 2 : 4), bf16, threads);
}
BENCHMARK(BM_LatentPrefill)
    ->ArgNames({"heads", "tokens", "thr", "bf16"})
    ->ArgsProduct({{16, 128}, {2048}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// MHA with DeepSeek's naive head widths (192 for scores, 128 for values): `queries` new tokens
// after `context_before` cached ones, random contiguous q, k, v.
struct NaiveMhaSetup {
  static constexpr int64_t kQk = 192, kV = 128;
  std::vector<float> q, k, v, out;
  mla::ops::AttentionParams p;

  NaiveMhaSetup(int64_t heads, int64_t queries, int64_t context_before, uint32_t seed)
      : q(queries * heads * kQk),
        k((context_before + queries) * heads * kQk),
        v((context_before + queries) * heads * kV),
        out(queries * heads * kV) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::vector<float>* buffer : {&q, &k, &v})
      for (float& value : *buffer) value = normal(rng);
    p.q = q.data();
    p.q_token_stride = heads * kQk;
    p.q_head_stride = kQk;
    p.k = mla::ops::KvView::contiguous(k.data(), heads * kQk);
    p.k_head_stride = kQk;
    p.v = mla::ops::KvView::contiguous(v.data(), heads * kV);
    p.v_head_stride = kV;
    p.out = out.data();
    p.out_token_stride = heads * kV;
    p.out_head_stride = kV;
    p.num_queries = queries;
    p.num_heads = heads;
    p.num_kv_heads = heads;
    p.qk_dim = kQk;
    p.v_dim = kV;
    p.context_before = context_before;
    p.scale = 0.07f;
  }
};

// Naive-path causal prefill of `tokens` tokens, one sequence, through the tiled flash kernel
// (ops/flash_attention.h): per-head keys of width 192 (128 nope + 64 rope) and values of width
// 128, DeepSeek's naive formulation. FLOPs: H * T (T + 1) / 2 * (2 * 192 + 2 * 128).
void BM_NaivePrefill(benchmark::State& state) {
  const int64_t heads = state.range(0), tokens = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  omp_set_num_threads(threads);
  NaiveMhaSetup setup(heads, tokens, 0, 4);
  constexpr int64_t kQk = NaiveMhaSetup::kQk, kV = NaiveMhaSetup::kV;
  mla::ops::FlashWorkspace ws;
  for (auto _ : state) mla::ops::flash_attention({&setup.p, 1}, ws);
  const double seen = static_cast<double>(tokens) * static_cast<double>(tokens + 1) / 2.0;
  report(state, heads * seen * (2.0 * kQk + 2.0 * kV),
         static_cast<double>(tokens * heads * (kQk + kV)) * 4, false, threads);
}
BENCHMARK(BM_NaivePrefill)
    ->ArgNames({"heads", "tokens", "thr"})
    ->ArgsProduct({{16, 128}, {1024, 4096}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ops::attention_forward (the generic kernel) decoding one token of MHA with DeepSeek's naive
// head widths (192 for scores, 128 for values) over `context` cached tokens, at a SIMD level
// (0 scalar, 1 avx2, 2 avx512); FLOPs H * L * (2 * 192 + 2 * 128).
void BM_GenericMhaDecode(benchmark::State& state) {
  const int64_t heads = state.range(0), context = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const auto level = static_cast<mla::ops::SimdLevel>(state.range(3));
  if (mla::ops::set_simd_level(level) != level) {
    mla::ops::set_simd_level(std::nullopt);
    state.SkipWithError("this CPU lacks the SIMD level");
    return;
  }
  omp_set_num_threads(threads);
  NaiveMhaSetup setup(heads, 1, context - 1, 3);
  constexpr int64_t kQk = NaiveMhaSetup::kQk, kV = NaiveMhaSetup::kV;
  for (auto _ : state) mla::ops::attention_forward(setup.p);
  mla::ops::set_simd_level(std::nullopt);
  const double flops = static_cast<double>(heads * context) * (2.0 * kQk + 2.0 * kV);
  report(state, flops, static_cast<double>(context * heads * (kQk + kV)) * 4, false, threads);
}
BENCHMARK(BM_GenericMhaDecode)
    ->ArgNames({"heads", "ctx", "thr", "level"})
    ->ArgsProduct({{16}, {4096}, {1, 2}, {0, 1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// A whole decode step of one DeepSeek-V3-shaped layer (float32 weights, random) through the
// absorbed path and the contiguous LatentCache: projections (oneDNN) plus the fused kernel. The
// cache holds `context` - 1 random rows; every iteration rewinds it and decodes token `context`.
void BM_LayerDecodeV3(benchmark::State& state) {
  const int64_t context = state.range(0), batch = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  omp_set_num_threads(threads);
  static const mla::MlaConfig config = mla::preset_config("deepseek-v3");
  static mla::MlaLayer layer(config, mla::MlaWeights::random(config, 1));
  mla::LatentCache cache(config, batch, context);
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t b = 0; b < batch; ++b) {
    float* rows = cache.rows(b);
    for (int64_t i = 0; i < (context - 1) * cache.row_width(); ++i) rows[i] = normal(rng);
  }
  std::vector<float> x(batch * config.hidden_size, 0.5f), y(x.size());
  for (auto _ : state) {
    cache.clear();
    cache.commit(context - 1);
    layer.forward(x, batch, 1, cache, y);
  }
  const int64_t h = config.num_heads, r = config.kv_lora_rank, w = cache.row_width();
  const double attention = static_cast<double>(batch * h * context) * (2.0 * w + 2.0 * r);
  state.counters["attention_GFLOP"] = attention * 1e-9;
  state.SetLabel(std::string(mla::ops::simd_level_name(mla::ops::simd_level())));
}
BENCHMARK(BM_LayerDecodeV3)
    ->ArgNames({"ctx", "batch", "thr"})
    ->ArgsProduct({{4096}, {1, 8}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
