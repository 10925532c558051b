#include "ops/attention.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "mla/error.h"
#include "ops/cpu_features.h"
#include "ops/parallel.h"
#include "ops/simd/attention_kernels.h"

namespace mla::ops {
namespace simd {

size_t attention_scratch_floats(int64_t heads, int64_t v_dim) {
  const auto pad = [](int64_t x) { return (x + 15) / 16 * 16; };
  return static_cast<size_t>(heads * kAttentionTile + heads * pad(v_dim) + 2 * pad(heads) +
                             4 * kAttentionTile);
}

}  // namespace simd

namespace {

constexpr int64_t kKeyTile = 64;
constexpr int64_t kMaxHeadsPerTask = 8;

// Cache elements are float32 or bf16 (the upper half of a float32, widened by a shift).
inline float widen(float v) {
  return v;
}
inline float widen(uint16_t v) {
  return std::bit_cast<float>(static_cast<uint32_t>(v) << 16);
}

template <typename T>
float dot(const float* a, const T* b, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * widen(b[i]);
  return sum;
}

// Per-thread scratch, grown on demand and kept: decode steps allocate nothing.
struct Scratch {
  std::vector<float> scores;  // (heads, kKeyTile)
  std::vector<float> acc;     // (heads, v_dim)
  std::vector<float> max;     // (heads)
  std::vector<float> sum;     // (heads)
};

Scratch& thread_scratch() {
  thread_local Scratch scratch;
  return scratch;
}

// 64-byte aligned scratch of the SIMD tasks, grown on demand and kept.
float* simd_scratch(size_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < floats + 16) buffer.resize(floats + 16);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) &
                                  ~uintptr_t{63});
}

using TaskFn = void (*)(const AttentionParams&, int64_t, int64_t, int64_t, int64_t, float*);

TaskFn simd_task(SimdLevel level) {
  if (level >= SimdLevel::kAvx512) return simd::attention_task_avx512;
  if (level >= SimdLevel::kAvx2) return simd::attention_task_avx2;
  return nullptr;
}

// Query t, query heads [h0, h1) which all share KV head g. K and V are the cache element types.
template <typename K, typename V>
void attend_task(const AttentionParams& p, int64_t t, int64_t g, int64_t h0, int64_t h1) {
  const int64_t heads = h1 - h0;
  const int64_t n_keys = p.context_before + t + 1;
  Scratch& s = thread_scratch();
  if (s.scores.size() < static_cast<size_t>(heads * kKeyTile)) s.scores.resize(heads * kKeyTile);
  if (s.acc.size() < static_cast<size_t>(heads * p.v_dim)) s.acc.resize(heads * p.v_dim);
  if (s.max.size() < static_cast<size_t>(heads)) {
    s.max.resize(heads);
    s.sum.resize(heads);
  }
  std::fill_n(s.acc.begin(), heads * p.v_dim, 0.0f);
  std::fill_n(s.max.begin(), heads, -std::numeric_limits<float>::infinity());
  std::fill_n(s.sum.begin(), heads, 0.0f);

  for (int64_t j0 = 0; j0 < n_keys; j0 += kKeyTile) {
    const int64_t tile = std::min(kKeyTile, n_keys - j0);
    for (int64_t hh = 0; hh < heads; ++hh) {
      const float* q = p.q + t * p.q_token_stride + (h0 + hh) * p.q_head_stride;
      float* sc = s.scores.data() + hh * kKeyTile;
      float tile_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < tile; ++j) {
        sc[j] = p.scale * dot(q, p.k.row<K>(j0 + j) + g * p.k_head_stride, p.qk_dim);
        tile_max = std::max(tile_max, sc[j]);
      }
      const float new_max = std::max(s.max[hh], tile_max);
      const float correction = std::exp(s.max[hh] - new_max);
      float tile_sum = 0.0f;
      for (int64_t j = 0; j < tile; ++j) {
        sc[j] = std::exp(sc[j] - new_max);
        tile_sum += sc[j];
      }
      s.sum[hh] = s.sum[hh] * correction + tile_sum;
      s.max[hh] = new_max;
      float* acc = s.acc.data() + hh * p.v_dim;
      if (correction != 1.0f) {
#pragma omp simd
        for (int64_t i = 0; i < p.v_dim; ++i) acc[i] *= correction;
      }
      for (int64_t j = 0; j < tile; ++j) {
        const float w = sc[j];
        const V* v = p.v.row<V>(j0 + j) + g * p.v_head_stride;
#pragma omp simd
        for (int64_t i = 0; i < p.v_dim; ++i) acc[i] += w * widen(v[i]);
      }
    }
  }
  for (int64_t hh = 0; hh < heads; ++hh) {
    float* out = p.out + t * p.out_token_stride + (h0 + hh) * p.out_head_stride;
    const float inv = 1.0f / s.sum[hh];
    const float* acc = s.acc.data() + hh * p.v_dim;
    for (int64_t i = 0; i < p.v_dim; ++i) out[i] = acc[i] * inv;
  }
}

}  // namespace

void attention_forward(const AttentionParams& p) {
  if (p.num_queries == 0 || p.num_heads == 0) return;
  for (const KvView* view : {&p.k, &p.v}) {
    if (view->dtype != DType::kF32 && view->dtype != DType::kBF16)  // quantized: latent kernel only
      throw Error("attention_forward: cache dtype must be F32 or BF16, got " +
                  std::string(dtype_name(view->dtype)));
  }
  const int64_t group = p.num_heads / p.num_kv_heads;  // query heads per KV head
  // Enough tasks to keep every thread busy, but as many heads per task as possible so that a
  // key tile loaded once serves several heads.
  const int64_t threads = omp_get_max_threads();
  int64_t heads_per_task = std::min(group, kMaxHeadsPerTask);
  while (heads_per_task > 1 &&
         p.num_queries * p.num_kv_heads * ((group + heads_per_task - 1) / heads_per_task) <
             2 * threads) {
    heads_per_task = (heads_per_task + 1) / 2;
  }
  const int64_t chunks = (group + heads_per_task - 1) / heads_per_task;
  const int64_t tasks = p.num_queries * p.num_kv_heads * chunks;
  const bool k_bf16 = p.k.dtype == DType::kBF16, v_bf16 = p.v.dtype == DType::kBF16;
  const TaskFn simd = simd_task(simd_level());
  const size_t scratch_floats = simd::attention_scratch_floats(heads_per_task, p.v_dim);
  const double work = static_cast<double>(p.num_queries) * p.num_heads *
                      (p.context_before + p.num_queries) * (p.qk_dim + p.v_dim);
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && worth_parallel(work))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t chunk = task % chunks;
    const int64_t g = (task / chunks) % p.num_kv_heads;
    const int64_t t = task / (chunks * p.num_kv_heads);
    const int64_t h0 = g * group + chunk * heads_per_task;
    const int64_t h1 = std::min(h0 + heads_per_task, (g + 1) * group);
    if (simd != nullptr) {
      simd(p, t, g, h0, h1, simd_scratch(scratch_floats));
    } else if (k_bf16 && v_bf16) {
      attend_task<uint16_t, uint16_t>(p, t, g, h0, h1);
    } else if (k_bf16) {
      attend_task<uint16_t, float>(p, t, g, h0, h1);
    } else if (v_bf16) {
      attend_task<float, uint16_t>(p, t, g, h0, h1);
    } else {
      attend_task<float, float>(p, t, g, h0, h1);
    }
  }
}

}  // namespace mla::ops
