// Sampling one token from DeepSeek's 129280 logits with each filter, next to a full sort of the
// vocabulary (what a sampler that sorts everything would pay at every token), in one run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "mla/sampler.h"

namespace {

constexpr size_t kVocab = 129280;  // DeepSeek-V2/V3

// Logits shaped like a language model's: a few likely tokens over a long tail.
const std::vector<float>& logits() {
  static const std::vector<float> v = [] {
    std::mt19937_64 rng(1);
    std::normal_distribution<float> n(0.0f, 2.0f);
    std::vector<float> x(kVocab);
    for (float& e : x) e = n(rng);
    for (int k = 0; k < 20; ++k) x[rng() % kVocab] += 12.0f;
    return x;
  }();
  return v;
}

void run(benchmark::State& state, mla::SamplerParams p) {
  mla::Sampler sampler(p);
  sampler.accept(std::vector<int32_t>{1, 2, 3, 5, 8, 13, 21, 34});
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits()));
  state.SetItemsProcessed(state.iterations());
}

void BM_Greedy(benchmark::State& s) {
  mla::SamplerParams p;
  p.temperature = 0.0;
  run(s, p);
}
void BM_Temperature(benchmark::State& s) {
  run(s, mla::SamplerParams{});
}
void BM_TopK40(benchmark::State& s) {
  mla::SamplerParams p;
  p.top_k = 40;
  run(s, p);
}
void BM_TopP09(benchmark::State& s) {
  mla::SamplerParams p;
  p.top_p = 0.9;
  run(s, p);
}
void BM_TopP09MinP005Penalty(benchmark::State& s) {
  mla::SamplerParams p;
  p.top_p = 0.9;
  p.min_p = 0.05;
  p.repeat_penalty = 1.1;
  run(s, p);
}
void BM_FullSortBaseline(benchmark::State& state) {
  const std::vector<float>& x = logits();
  std::vector<int32_t> ids(kVocab);
  for (auto _ : state) {
    std::iota(ids.begin(), ids.end(), 0);
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Greedy);
BENCHMARK(BM_Temperature);
BENCHMARK(BM_TopK40);
BENCHMARK(BM_TopP09);
BENCHMARK(BM_TopP09MinP005Penalty);
BENCHMARK(BM_FullSortBaseline);

}  // namespace

BENCHMARK_MAIN();
