// Decoding a token through a warmed-up layer performs no heap allocation: the workspace and
// attention scratch are reused. Counted by replacing the global operator new. With bf16 weights
// oneDNN's matmul allocates small objects inside each call and frees them before returning:
// nothing is retained, so memory stays a fixed workspace (checked by the live count).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "mla/layer.h"
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
void operator delete(void* p) noexcept {
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

}  // namespace
}  // namespace mla
