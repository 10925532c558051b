#include "perf/ceilings.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <vector>

namespace mla::perf {
namespace {

// Enough independent accumulators to cover latency x throughput of both pipes (FMA: 4 cycles
// x 2 per cycle; VDPBF16PS: 6 x 2), so the loop measures throughput alone. More than 16 is worse
// here: GCC no longer keeps them all in the 32 registers.
constexpr int kAcc = 16;

template <typename T>
void sink(const T& v) {
  alignas(64) float out[sizeof(T) / sizeof(float)];
  __builtin_memcpy(out, &v, sizeof(T));
  volatile float s = out[0];
  (void)s;
}

__attribute__((target("avx512f"))) double fma_avx512(int64_t iters) {
  __m512 acc[kAcc];
  for (auto& a : acc) a = _mm512_set1_ps(0.5f);
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& a : acc) a = _mm512_fmadd_ps(a, x, y);
  }
  __m512 s = acc[0];
  for (int k = 1; k < kAcc; ++k) s = _mm512_add_ps(s, acc[k]);
  sink(s);
  return static_cast<double>(iters) * kAcc * 16 * 2;
}

__attribute__((target("avx2,fma"))) double fma_avx2(int64_t iters) {
  __m256 acc[12];  // 16 registers: 12 accumulators and the two operands
  for (auto& a : acc) a = _mm256_set1_ps(0.5f);
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& a : acc) a = _mm256_fmadd_ps(a, x, y);
  }
  __m256 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm256_add_ps(s, acc[k]);
  sink(s);
  return static_cast<double>(iters) * 12 * 8 * 2;
}

// VDPBF16PS: 32 bf16 products summed pairwise into 16 f32 lanes = 64 FLOPs per instruction.
__attribute__((target("avx512f,avx512bf16"))) double dot_bf16_avx512(int64_t iters) {
  __m512 acc[kAcc];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3a83);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& a : acc) a = _mm512_dpbf16_ps(a, x, y);
  }
  __m512 s = acc[0];
  for (int k = 1; k < kAcc; ++k) s = _mm512_add_ps(s, acc[k]);
  sink(s);
  return static_cast<double>(iters) * kAcc * 64;
}

// Best of 100 short rounds of `loop` run by the whole team at once, in GFLOP/s. A round starts
// at a barrier and ends when the last thread is done, so it counts only what the team did
// together; short rounds (under 1 ms, ~100 ms in all) make it likely that some round ran with
// no thread descheduled on a shared machine, and the untimed warm-up round absorbs a fresh
// team's thread start. Five long regions, as before, gave 2-thread peaks 15-60% low whenever
// another process held a core (a bf16 peak of 388 against 906-944 GFLOP/s a moment later).
double measure(double (*loop)(int64_t), int threads) {
  constexpr int kRounds = 100;
  constexpr int64_t kIters = 300'000;  // 16 accumulators: 2.4M cycles, under 1 ms
  double best = 0, flops = 0;
  std::chrono::steady_clock::time_point start;
#pragma omp parallel num_threads(threads)
  {
    loop(kIters);
    for (int round = 0; round < kRounds; ++round) {
#pragma omp barrier
#pragma omp single
      {
        flops = 0;
        start = std::chrono::steady_clock::now();
      }
      const double done = loop(kIters);
#pragma omp atomic
      flops += done;
#pragma omp barrier
#pragma omp single
      {
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::max(best, flops / seconds * 1e-9);
      }
    }
  }
  return best;
}

double cached_peak(bool bf16, int threads) {
  static std::mutex mutex;
  static std::map<std::pair<bool, int>, double> peaks;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, inserted] = peaks.try_emplace({bf16, threads}, 0.0);
  if (inserted) {
    if (bf16) {
      it->second = __builtin_cpu_supports("avx512bf16") ? measure(dot_loop_bf16, threads) : 0.0;
    } else {
      it->second =
          measure(__builtin_cpu_supports("avx512f") ? fma_loop_avx512 : fma_loop_avx2, threads);
    }
  }
  return it->second;
}

}  // namespace

double fma_loop_avx512(int64_t iters) {
  return __builtin_cpu_supports("avx512f") ? fma_avx512(iters) : 0.0;
}

double fma_loop_avx2(int64_t iters) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? fma_avx2(iters) : 0.0;
}

double dot_loop_bf16(int64_t iters) {
  return __builtin_cpu_supports("avx512bf16") ? dot_bf16_avx512(iters) : 0.0;
}

double f32_peak_gflops(int threads) {
  return cached_peak(false, threads);
}

double bf16_peak_gflops(int threads) {
  return cached_peak(true, threads);
}

float read_sum(const float* data, int64_t n) {
  float sum = 0.0f;
#pragma omp parallel for simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += data[i];
  return sum;
}

double read_bandwidth_gbs() {
  const int64_t n = int64_t{1} << 27;
  std::vector<float> data(static_cast<size_t>(n), 1.0f);
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    const float sum = read_sum(data.data(), n);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (sum < 0) return 0;  // never: keeps the sum observable
    best = std::max(best, static_cast<double>(n) * 4 / seconds * 1e-9);
  }
  return best;
}

}  // namespace mla::perf
