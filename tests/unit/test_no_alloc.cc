// Decoding a token through a warmed-up layer performs no heap allocation in our code: the
// workspace and attention scratch are reused. Counted by replacing the global operator new.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "mla/layer.h"
#include "test_util.h"

namespace {
std::atomic<long> g_allocations{0};
}

// GCC cannot see that the replaced new and delete below are a matched malloc/free pair.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace mla {
namespace {

template <typename Cache>
long allocations_per_decode_step() {
  MlaConfig c = preset_config("tiny");
  MlaLayer layer(c, MlaWeights::random(c, 1));
  Cache cache(c, 2, 64);
  auto x = test::random_normal(2 * 8 * c.hidden_size, 2);
  std::vector<float> y(x.size());
  layer.forward(x, 2, 8, cache, y);  // prefill
  std::vector<float> xt(2 * c.hidden_size, 0.5f), yt(xt.size());
  layer.forward(xt, 2, 1, cache, yt);  // warm-up step
  const long before = g_allocations.load();
  for (int i = 0; i < 10; ++i) layer.forward(xt, 2, 1, cache, yt);
  return g_allocations.load() - before;
}

TEST(NoAllocation, AbsorbedDecodeStep) {
  EXPECT_EQ(allocations_per_decode_step<LatentCache>(), 0);
}
TEST(NoAllocation, NaiveDecodeStep) {
  EXPECT_EQ(allocations_per_decode_step<NaiveKVCache>(), 0);
}

}  // namespace
}  // namespace mla
