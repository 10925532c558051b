// Sparse attention inside MlaLayer, on the absorbed and the naive path, through contiguous and
// paged caches: patterns that keep every key equal dense attention, the two paths agree under
// every pattern (window, block, exact top-k, hybrid dense/sparse heads), and decoding token by
// token through the cache equals one prefill.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/layer.h"
#include "test_util.h"

namespace mla {
namespace {

using test::random_normal;
using test::rel_error;

constexpr int64_t kBatch = 2, kSeq = 40;

MlaConfig config() {
  MlaConfig c = preset_config("tiny");
  c.num_heads = 4;
  return c;
}

enum class Cache { kAbsorbed, kNaive, kPagedAbsorbed, kPagedNaive };
const Cache kRuns[] = {Cache::kAbsorbed, Cache::kNaive, Cache::kPagedAbsorbed, Cache::kPagedNaive};

// Prefill of `prefill` tokens, then the rest one token at a time, through the cache of `run`.
std::vector<float> run_layer(const SparseSpec& spec, Cache run, int64_t prefill = kSeq) {
  const MlaConfig c = config();
  MlaLayer layer(c, MlaWeights::random(c, 7));
  layer.set_sparse(spec);
  const int64_t d = c.hidden_size;
  const std::vector<float> x = random_normal(static_cast<size_t>(kBatch * kSeq * d), 11);
  std::vector<float> y(x.size());
  const bool paged = run == Cache::kPagedAbsorbed || run == Cache::kPagedNaive;
  const AttentionPath path = run == Cache::kAbsorbed || run == Cache::kPagedAbsorbed
                                 ? AttentionPath::kAbsorbed
                                 : AttentionPath::kNaive;
  LatentCache latent(c, kBatch, kSeq);
  NaiveKvCache naive(c, kBatch, kSeq);
  PagedKvPool pool(layer.paged_token_width(path), 8, kBatch * 8);
  std::vector<PagedKvPool::SeqId> seqs = {pool.add_sequence(), pool.add_sequence()};
  for (int64_t t = 0; t < kSeq;) {
    const int64_t n = t == 0 ? prefill : 1;
    std::vector<float> xs(static_cast<size_t>(kBatch * n * d)), ys(xs.size());
    for (int64_t b = 0; b < kBatch; ++b)
      std::copy_n(x.begin() + (b * kSeq + t) * d, n * d, xs.begin() + b * n * d);
    if (paged) {
      const std::vector<int64_t> counts(kBatch, n);
      layer.forward(xs, seqs, counts, pool, path, ys);
    } else if (path == AttentionPath::kAbsorbed) {
      layer.forward(xs, kBatch, n, latent, ys);
    } else {
      layer.forward(xs, kBatch, n, naive, ys);
    }
    for (int64_t b = 0; b < kBatch; ++b)
      std::copy_n(ys.begin() + b * n * d, n * d, y.begin() + (b * kSeq + t) * d);
    t += n;
  }
  return y;
}

const std::vector<float>& dense_output() {
  static const std::vector<float> y = run_layer(SparseSpec{}, Cache::kAbsorbed);
  return y;
}

TEST(SparseLayer, PatternsThatKeepEveryKeyAreDense) {
  for (const char* text : {"topk:k=40", "topk:k=1000", "window:size=40", "block:size=8,local=5",
                           "block:size=8,local=1,global=5", "topk:k=3,dense-heads=4"}) {
    for (Cache run : kRuns) {
      EXPECT_LT(rel_error(run_layer(parse_sparse_spec(text), run), dense_output()), 2e-5)
          << text << " run " << static_cast<int>(run);
    }
  }
}

TEST(SparseLayer, AbsorbedAndNaiveAgreeUnderEveryPattern) {
  for (const char* text : {"window:size=5", "block:size=4,local=2,global=1", "topk:k=6",
                           "topk:k=6,dense-heads=2", "window:size=3,dense-heads=1"}) {
    const SparseSpec spec = parse_sparse_spec(text);
    const std::vector<float> want = run_layer(spec, Cache::kAbsorbed);
    // Sparse really changes the output (the patterns drop keys).
    EXPECT_GT(rel_error(want, dense_output()), 1e-3) << text;
    for (Cache run : {Cache::kNaive, Cache::kPagedAbsorbed, Cache::kPagedNaive})
      EXPECT_LT(rel_error(run_layer(spec, run), want), 2e-5)
          << text << " run " << static_cast<int>(run);
  }
}

TEST(SparseLayer, DecodeThroughTheCacheEqualsOnePrefill) {
  for (const char* text :
       {"window:size=5", "block:size=4,local=2,global=1", "topk:k=6,dense-heads=1"}) {
    const SparseSpec spec = parse_sparse_spec(text);
    for (Cache run : kRuns) {
      EXPECT_LT(rel_error(run_layer(spec, run, 9), run_layer(spec, run)), 2e-5)
          << text << " run " << static_cast<int>(run);
    }
  }
}

TEST(SparseLayer, BadSpecsAndDsaWithoutAnIndexPoolAreRefused) {
  const MlaConfig c = config();
  MlaLayer layer(c, MlaWeights::random(c, 7));
  try {
    layer.set_sparse(parse_sparse_spec("topk:k=4,dense-heads=5"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "sparse: dense-heads: 5 is more than the 4 heads");
  }
  layer.set_sparse(parse_sparse_spec("dsa:k=4"));
  LatentCache cache(c, 1, 4);
  std::vector<float> x(static_cast<size_t>(c.hidden_size)), y(x.size());
  try {
    layer.forward(x, 1, 1, cache, y);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "forward: DSA needs the lightning indexer's key pool: use the paged forward that "
                 "takes one");
  }
  EXPECT_EQ(cache.length(), 0);
}

}  // namespace
}  // namespace mla
