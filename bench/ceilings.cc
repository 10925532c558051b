#include "ceilings.h"

#include <immintrin.h>

namespace mla::bench {
namespace {

// 12 independent accumulators hide the 4-cycle FMA latency on two FMA ports.
__attribute__((target("avx512f"))) double fma_avx512(int64_t iters) {
  __m512 acc[12];
  for (auto& a : acc) a = _mm512_set1_ps(0.5f);
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& a : acc) a = _mm512_fmadd_ps(a, x, y);
  }
  __m512 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm512_add_ps(s, acc[k]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);  // (GCC 12 warns inside _mm512_reduce_add_ps)
  volatile float sink = out[0];
  (void)sink;
  return static_cast<double>(iters) * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) double fma_avx2(int64_t iters) {
  __m256 acc[12];
  for (auto& a : acc) a = _mm256_set1_ps(0.5f);
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& a : acc) a = _mm256_fmadd_ps(a, x, y);
  }
  __m256 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm256_add_ps(s, acc[k]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  volatile float sink = out[0];
  (void)sink;
  return static_cast<double>(iters) * 12 * 8 * 2;
}

// VDPBF16PS: 32 bf16 products summed pairwise into 16 f32 lanes = 64 FLOPs per instruction.
__attribute__((target("avx512f,avx512bf16"))) double dot_bf16_avx512(int64_t iters) {
  __m512 acc[12];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3a83);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& a : acc) a = _mm512_dpbf16_ps(a, x, y);
  }
  __m512 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm512_add_ps(s, acc[k]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);  // (GCC 12 warns inside _mm512_reduce_add_ps)
  volatile float sink = out[0];
  (void)sink;
  return static_cast<double>(iters) * 12 * 64;
}

}  // namespace

const char* simd_name() {
  return __builtin_cpu_supports("avx512f") ? "avx512" : "avx2";
}

double fma_loop_f32(int64_t iters) {
  if (__builtin_cpu_supports("avx512f")) return fma_avx512(iters);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return fma_avx2(iters);
  return 0.0;
}

double dot_loop_bf16(int64_t iters) {
  if (__builtin_cpu_supports("avx512bf16")) return dot_bf16_avx512(iters);
  return 0.0;
}

float read_sum(const float* data, int64_t n) {
  float sum = 0.0f;
#pragma omp parallel for simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += data[i];
  return sum;
}

}  // namespace mla::bench
