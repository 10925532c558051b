// The layer over a paged pool: paged == contiguous for every page size, batched variable-length
// steps == each sequence alone, multi-token decode == token by token, chunked == one-shot
// prefill, NaN poison in free pages and scattered page tables change nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "mla/error.h"
#include "mla/layer.h"
#include "test_util.h"

namespace mla {
namespace {

using Seq = PagedKvPool::SeqId;

MlaConfig small_config() {
  MlaConfig c = preset_config("tiny");
  c.num_heads = 3;
  c.v_head_dim = 24;
  return c;
}

// Fills every page with NaN, then fragments the pool so that later sequences get scattered,
// non-monotonic pages.
void poison_and_fragment(PagedKvPool& pool) {
  std::vector<Seq> filler;
  while (pool.pages_free() > 0) {
    Seq s = pool.add_sequence();
    const Seq ids[] = {s};
    const int64_t n[] = {pool.page_size()};
    pool.reserve(ids, n);
    for (int64_t t = 0; t < pool.page_size(); ++t) {
      auto* row = static_cast<float*>(pool.writable_row(s, t));
      for (int64_t i = 0; i < pool.token_width(); ++i) row[i] = NAN;
    }
    pool.commit(s, pool.page_size());
    filler.push_back(s);
  }
  for (size_t i = 0; i < filler.size(); i += 2) pool.remove_sequence(filler[i]);
  for (size_t i = 1; i < filler.size(); i += 2) pool.remove_sequence(filler[i]);
}

// Token slice [t0, t0 + n) of sequence b of x (B, S, d).
std::vector<float> tokens(const std::vector<float>& x, int64_t seq, int64_t d, int64_t b,
                          int64_t t0, int64_t n) {
  return std::vector<float>(x.begin() + (b * seq + t0) * d, x.begin() + (b * seq + t0 + n) * d);
}

class PagedLayer : public ::testing::TestWithParam<std::tuple<AttentionPath, int64_t>> {};

TEST_P(PagedLayer, BatchedVariableLengthEqualsEachSequenceAlone) {
  const auto [path, page_size] = GetParam();
  const MlaConfig c = small_config();
  MlaLayer layer(c, MlaWeights::random(c, 3));
  const int64_t d = c.hidden_size, seq = 30;
  const std::vector<int64_t> prompt = {5, 17, 1};  // three sequences of different lengths
  auto x = test::random_normal(3 * seq * d, 4);

  // Reference: each sequence alone through the contiguous cache, one-shot.
  std::vector<std::vector<float>> expected;
  for (int64_t b = 0; b < 3; ++b) {
    auto xb = tokens(x, seq, d, b, 0, seq);
    std::vector<float> yb(xb.size());
    layer.prefill(xb, 1, seq, yb, path);
    expected.push_back(yb);
  }

  PagedKvPool pool(layer.paged_token_width(path), page_size,
                   3 * ((seq + page_size - 1) / page_size) + 8);
  poison_and_fragment(pool);
  std::vector<Seq> ids = {pool.add_sequence(), pool.add_sequence(), pool.add_sequence()};
  std::vector<std::vector<float>> got(3, std::vector<float>(seq * d));
  std::vector<int64_t> done(3, 0);
  // Step 1: prompts of different lengths in one call; later steps: 1, 2 or 3 new tokens each.
  for (int step = 0; done[0] < seq || done[1] < seq || done[2] < seq; ++step) {
    std::vector<Seq> step_ids;
    std::vector<int64_t> counts;
    std::vector<float> xs;
    for (int64_t b = 0; b < 3; ++b) {
      const int64_t want = step == 0 ? prompt[b] : 1 + (step + b) % 3;
      const int64_t n = std::min(want, seq - done[b]);
      if (n == 0) continue;
      step_ids.push_back(ids[b]);
      counts.push_back(n);
      auto part = tokens(x, seq, d, b, done[b], n);
      xs.insert(xs.end(), part.begin(), part.end());
    }
    std::vector<float> ys(xs.size());
    layer.forward(xs, step_ids, counts, pool, path, ys);
    size_t offset = 0;
    for (size_t i = 0; i < step_ids.size(); ++i) {
      const int64_t b = std::find(ids.begin(), ids.end(), step_ids[i]) - ids.begin();
      std::copy_n(ys.begin() + offset, counts[i] * d, got[b].begin() + done[b] * d);
      offset += counts[i] * d;
      done[b] += counts[i];
    }
  }
  for (int64_t b = 0; b < 3; ++b) {
    EXPECT_EQ(pool.length(ids[b]), seq);
    EXPECT_LT(test::rel_error(got[b], expected[b]), 2e-6) << "sequence " << b;
  }
}

TEST_P(PagedLayer, ChunkedPrefillEqualsOneShot) {
  const auto [path, page_size] = GetParam();
  const MlaConfig c = small_config();
  MlaLayer layer(c, MlaWeights::random(c, 5));
  const int64_t d = c.hidden_size, seq = 45;
  auto x = test::random_normal(seq * d, 6);
  std::vector<float> expected(x.size());
  layer.prefill(x, 1, seq, expected, path);
  for (int64_t chunk : {8, 13, 45}) {
    PagedKvPool pool(layer.paged_token_width(path), page_size,
                     (seq + page_size - 1) / page_size + 1);
    const Seq ids[] = {pool.add_sequence()};
    std::vector<float> y(x.size());
    for (int64_t t = 0; t < seq; t += chunk) {
      const int64_t n[] = {std::min(chunk, seq - t)};
      layer.forward(std::span<const float>(x.data() + t * d, n[0] * d), ids, n, pool, path,
                    std::span<float>(y.data() + t * d, n[0] * d));
    }
    EXPECT_LT(test::rel_error(y, expected), 2e-6) << "chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(
    PathsAndPageSizes, PagedLayer,
    ::testing::Combine(::testing::Values(AttentionPath::kAbsorbed, AttentionPath::kNaive),
                       ::testing::Values(1, 7, 16, 64)),
    [](const auto& param_info) {
      return std::string(std::get<0>(param_info.param) == AttentionPath::kAbsorbed ? "absorbed"
                                                                                   : "naive") +
             "_page" + std::to_string(std::get<1>(param_info.param));
    });

TEST(PagedLayerBf16, CloseToF32AndEqualToF32OnRoundedCache) {
  const MlaConfig c = small_config();
  MlaLayer layer(c, MlaWeights::random(c, 21));
  const int64_t d = c.hidden_size, seq = 33;
  auto x = test::random_normal(seq * d, 22);
  for (AttentionPath path : {AttentionPath::kAbsorbed, AttentionPath::kNaive}) {
    auto run = [&](DType dtype) {
      PagedKvPool pool(layer.paged_token_width(path), 16, 8, dtype);
      const Seq ids[] = {pool.add_sequence()};
      const int64_t n[] = {seq};
      std::vector<float> y(x.size());
      layer.forward(x, ids, n, pool, path, y);
      return y;
    };
    const double err = test::rel_error(run(DType::kBF16), run(DType::kF32));
    // bf16 keeps 8 bits of mantissa: a relative error of a few 2^-9 after attention and W_O.
    EXPECT_LT(err, 2e-2);
    EXPECT_GT(err, 1e-5);  // the cache really is stored in bf16
  }
}

TEST(PagedLayerErrors, FullPoolWritesNothing) {
  const MlaConfig c = small_config();
  MlaLayer layer(c, MlaWeights::random(c, 1));
  PagedKvPool pool(layer.paged_token_width(AttentionPath::kAbsorbed), 4, 2);
  const Seq a = pool.add_sequence(), b = pool.add_sequence();
  auto x = test::random_normal(6 * c.hidden_size, 2);
  std::vector<float> y(x.size());
  const Seq both[] = {a, b};
  const int64_t counts[] = {3, 3};
  layer.forward(x, both, counts, pool, AttentionPath::kAbsorbed, y);
  const int64_t more[] = {2, 2};  // both sequences need a second page; only none is free
  std::vector<float> x4(4 * c.hidden_size), y4(x4.size());
  try {
    layer.forward(x4, both, more, pool, AttentionPath::kAbsorbed, y4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cache: out of pages: need 2 more, 0 free of 2 (page size 4)");
  }
  EXPECT_EQ(pool.length(a), 3);
  EXPECT_EQ(pool.length(b), 3);
}

TEST(PagedLayerErrors, WrongPoolWidthAndCounts) {
  const MlaConfig c = small_config();
  MlaLayer layer(c, MlaWeights::random(c, 1));
  PagedKvPool pool(layer.paged_token_width(AttentionPath::kAbsorbed), 4, 4);
  const Seq a = pool.add_sequence();
  std::vector<float> x(c.hidden_size), y(x.size());
  const Seq ids[] = {a};
  const int64_t one[] = {1}, zero[] = {0};
  try {
    layer.forward(x, ids, one, pool, AttentionPath::kNaive, y);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "forward: the page pool holds rows of 40 numbers, the naive path needs 144");
  }
  try {
    layer.forward(x, ids, zero, pool, AttentionPath::kAbsorbed, y);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "forward: every sequence needs at least 1 new token, got 0");
  }
  const Seq unknown[] = {9};
  EXPECT_THROW(layer.forward(x, unknown, one, pool, AttentionPath::kAbsorbed, y), Error);
}

}  // namespace
}  // namespace mla
