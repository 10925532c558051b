// Decoding a token through a warmed-up layer performs no heap allocation: the workspace and
// attention scratch are reused. Counted by replacing the global operator new. With bf16 weights
// oneDNN's matmul allocates small objects inside each call and frees them before returning:
// nothing is retained, so memory stays a fixed workspace (checked by the live count).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <optional>
#include <vector>

#include "mla/layer.h"
#include "mla/model.h"
#include "mla/sampler.h"
#include "ops/cpu_features.h"
#include "test_util.h"

namespace {
std::atomic<long> g_allocations{0};
std::atomic<long> g_frees{0};
}  // namespace

// GCC cannot see that the replaced new and delete below are a matched malloc/free pair.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// The nothrow form too (std::stable_sort's temporary buffer): the library's own would pair its
// allocation with the free() below, which ASan reports as a mismatch.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept {
  if (p) g_frees.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  if (p) g_frees.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  if (p) g_frees.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}

namespace mla {
namespace {

struct Counts {
  long allocations = 0;
  long retained = 0;  // allocations not freed by the end of the steps
};

template <typename Cache>
Counts allocations_per_decode_step(DType weight_dtype = DType::kF32) {
  MlaConfig c = preset_config("tiny");
  MlaLayer layer(c, MlaWeights::random(c, 1), weight_dtype);
  Cache cache(c, 2, 64);
  auto x = test::random_normal(2 * 8 * c.hidden_size, 2);
  std::vector<float> y(x.size());
  layer.forward(x, 2, 8, cache, y);  // prefill
  std::vector<float> xt(2 * c.hidden_size, 0.5f), yt(xt.size());
  layer.forward(xt, 2, 1, cache, yt);  // warm-up step
  const long before = g_allocations.load(), freed_before = g_frees.load();
  for (int i = 0; i < 10; ++i) layer.forward(xt, 2, 1, cache, yt);
  const long allocations = g_allocations.load() - before;
  return {allocations, allocations - (g_frees.load() - freed_before)};
}

TEST(NoAllocation, AbsorbedDecodeStep) {
  EXPECT_EQ(allocations_per_decode_step<LatentCache>().allocations, 0);
}
TEST(NoAllocation, AbsorbedDecodeStepBf16WeightsRetainsNothing) {
  EXPECT_EQ(allocations_per_decode_step<LatentCache>(DType::kBF16).retained, 0);
}
TEST(NoAllocation, NaiveDecodeStep) {
  EXPECT_EQ(allocations_per_decode_step<NaiveKvCache>().allocations, 0);
}
// MLA_SIMD (or set_simd_level) holds every kernel family to a level: looking the kernel up
// then must not allocate either (it once built the candidate list on every call).
TEST(NoAllocation, DecodeStepsWithTheSimdLevelHeld) {
  ops::set_simd_level(ops::SimdLevel::kAvx2);
  EXPECT_EQ(allocations_per_decode_step<LatentCache>().allocations, 0);
  EXPECT_EQ(allocations_per_decode_step<NaiveKvCache>().allocations, 0);
  ops::set_simd_level(std::nullopt);
}

// A whole model (MoE with a shared expert, dense first layer) over its paged caches: a warm
// batched decode step allocates nothing either, with float32, bf16 or int8 weights.
long whole_model_decode_allocations(DType weight_dtype, bool int8) {
  DeepseekModel::Options o;
  o.weight_dtype = weight_dtype;
  o.int8 = int8;
  o.cache_tokens = 64;
  DeepseekModel m = DeepseekModel::random(model_preset("tiny-moe-model", 0), 3, o);
  const std::vector<DeepseekModel::SeqId> seqs = {m.add_sequence(), m.add_sequence()};
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7};
  std::vector<float> logits(prompt.size() * 256);
  m.forward(prompt, seqs, std::vector<int64_t>{4, 3}, logits);
  const std::vector<int32_t> next = {9, 10};
  const std::vector<int64_t> ones = {1, 1};
  std::vector<float> step(2 * 256);
  m.forward(next, seqs, ones, step);  // warm-up
  const long before = g_allocations.load();
  for (int i = 0; i < 5; ++i) m.forward(next, seqs, ones, step);
  return g_allocations.load() - before;
}

TEST(NoAllocation, WholeModelDecodeStep) {
  EXPECT_EQ(whole_model_decode_allocations(DType::kF32, false), 0);
  EXPECT_EQ(whole_model_decode_allocations(DType::kBF16, false), 0);
  EXPECT_EQ(whole_model_decode_allocations(DType::kBF16, true), 0);
}

// Sampling a token with every filter and the repeat penalty on, once warmed up.
TEST(NoAllocation, SamplerStep) {
  SamplerParams p;
  p.temperature = 0.8;
  p.top_p = 0.9;
  p.min_p = 0.01;
  p.repeat_penalty = 1.3;
  p.repeat_last_n = 16;
  std::vector<float> logits = test::random_normal(5000, 3);
  for (int64_t top_k : {int64_t{0}, int64_t{40}}) {
    p.top_k = top_k;
    Sampler sampler(p);
    sampler.sample(logits);  // warm-up: sizes the work buffers to the vocabulary
    const long before = g_allocations.load();
    for (int i = 0; i < 20; ++i) sampler.sample(logits);
    EXPECT_EQ(g_allocations.load() - before, 0) << "top_k " << top_k;
  }
}

}  // namespace
}  // namespace mla
