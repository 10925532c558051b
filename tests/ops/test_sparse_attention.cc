// Sparse attention over gathered key lists (ops/sparse_attention.h) and the list builders
// (ops/sparse_select.h), against a masked softmax in double: exact top-k with k >= context is
// dense, a full block layout is dense, a sliding window equals dense attention with the same
// explicit mask, keys left out get exactly zero weight, and bad lists are refused by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "mla/dtype.h"
#include "mla/error.h"
#include "mla/sparse.h"
#include "ops/latent_attention.h"
#include "ops/sparse_attention.h"
#include "ops/sparse_select.h"
#include "test_util.h"

namespace mla {
namespace {

// A latent-layout problem: T new queries x H heads of width W = R + Dr after `before` cached
// tokens; rows (before + T, W) whose first R entries are the value.
struct Problem {
  int64_t heads = 4, rank = 16, rope = 8, queries = 5, before = 300;
  std::vector<float> q, rows;
  float scale = 0.2f;
  int64_t width() const { return rank + rope; }
  int64_t keys() const { return before + queries; }
  Problem() {
    q = test::random_normal(static_cast<size_t>(queries * heads * width()), 1);
    rows = test::random_normal(static_cast<size_t>(keys() * width()), 2);
  }
  ops::AttentionParams params(float* out) const {
    ops::AttentionParams p;
    p.q = q.data();
    p.q_token_stride = heads * width();
    p.q_head_stride = width();
    p.k = p.v = ops::KvView::contiguous(rows.data(), width());
    p.out = out;
    p.out_token_stride = heads * rank;
    p.out_head_stride = rank;
    p.num_queries = queries;
    p.num_heads = heads;
    p.qk_dim = width();
    p.v_dim = rank;
    p.context_before = before;
    p.scale = scale;
    return p;
  }
  size_t out_size() const { return static_cast<size_t>(queries * heads * rank); }
};

using Mask = std::function<bool(int64_t t, int64_t h, int64_t j)>;  // t: query's key number

// Softmax over the keys j <= t the mask allows, in double.
std::vector<float> masked_reference(const Problem& pr, const Mask& allowed) {
  const int64_t w = pr.width();
  std::vector<float> out(pr.out_size());
  for (int64_t t = 0; t < pr.queries; ++t) {
    const int64_t pos = pr.before + t;
    for (int64_t h = 0; h < pr.heads; ++h) {
      const float* qh = pr.q.data() + (t * pr.heads + h) * w;
      std::vector<double> s(static_cast<size_t>(pos + 1), -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j <= pos; ++j) {
        if (!allowed(pos, h, j)) continue;
        double d = 0;
        for (int64_t i = 0; i < w; ++i) d += double(qh[i]) * pr.rows[j * w + i];
        s[j] = d * pr.scale;
        m = std::max(m, s[j]);
      }
      double total = 0;
      for (double& v : s) total += (v = std::exp(v - m));
      for (int64_t c = 0; c < pr.rank; ++c) {
        double o = 0;
        for (int64_t j = 0; j <= pos; ++j) o += s[j] * pr.rows[j * w + c];
        out[(t * pr.heads + h) * pr.rank + c] = static_cast<float>(o / total);
      }
    }
  }
  return out;
}

std::vector<float> dense(const Problem& pr) {
  std::vector<float> out(pr.out_size());
  const ops::AttentionParams p = pr.params(out.data());
  ops::latent_attention(std::span<const ops::AttentionParams>(&p, 1));
  return out;
}

// Shared-by-heads lists for every query from a selector of (key number) -> list.
struct Lists {
  std::vector<int32_t> indices, counts;
  int64_t capacity = 0;
};
Lists build(const Problem& pr, int64_t capacity,
            const std::function<int64_t(int64_t, int32_t*)>& select) {
  Lists l;
  l.capacity = capacity;
  l.indices.assign(static_cast<size_t>(pr.queries * capacity), -1);
  for (int64_t t = 0; t < pr.queries; ++t)
    l.counts.push_back(
        static_cast<int32_t>(select(pr.before + t, l.indices.data() + t * capacity)));
  return l;
}

std::vector<float> sparse(const Problem& pr, const Lists& l) {
  std::vector<float> out(pr.out_size(), NAN);
  ops::SparseAttentionParams sp;
  sp.attn = pr.params(out.data());
  sp.lists = {l.indices.data(), l.counts.data(), l.capacity, false};
  ops::sparse_attention(std::span<const ops::SparseAttentionParams>(&sp, 1));
  return out;
}

TEST(SparseSelect, WindowAndBlocksListTheRightKeys) {
  std::vector<int32_t> out(64);
  ASSERT_EQ(ops::select_window(2, 4, out.data()), 3);
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 3), (std::vector<int32_t>{0, 1, 2}));
  ASSERT_EQ(ops::select_window(10, 4, out.data()), 4);
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 4),
            (std::vector<int32_t>{7, 8, 9, 10}));
  // Blocks of 4, one local and one global block: query 13 (block 3) sees 0..3 and 12..13.
  ASSERT_EQ(ops::select_blocks(13, 4, 1, 1, out.data()), 6);
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 6),
            (std::vector<int32_t>{0, 1, 2, 3, 12, 13}));
  // Two local blocks, no global: query 9 (block 2) sees blocks 1 and 2 up to itself.
  ASSERT_EQ(ops::select_blocks(9, 4, 2, 0, out.data()), 6);
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 6),
            (std::vector<int32_t>{4, 5, 6, 7, 8, 9}));
}

TEST(SparseSelect, TopKTakesTheLargestTiesToTheLowerKeyNaNsLast) {
  const std::vector<float> s = {0.5f, NAN, 2.0f, 2.0f, -1.0f, 3.0f};
  std::vector<int32_t> out(6), order;
  ASSERT_EQ(ops::select_top_k(s.data(), 6, 3, out.data(), order), 3);
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 3), (std::vector<int32_t>{2, 3, 5}));
  ASSERT_EQ(ops::select_top_k(s.data(), 6, 2, out.data(), order), 2);
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 2), (std::vector<int32_t>{2, 5}));
  ASSERT_EQ(ops::select_top_k(s.data(), 6, 5, out.data(), order), 5);
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 5),
            (std::vector<int32_t>{0, 2, 3, 4, 5}));
  ASSERT_EQ(ops::select_top_k(s.data(), 6, 9, out.data(), order), 6);  // k >= n: all, in order
}

TEST(SparseAttention, TopKWithKAtLeastTheContextIsDense) {
  Problem pr;
  const std::vector<float> want = dense(pr);
  for (int64_t k : {pr.keys(), pr.keys() + 100}) {
    std::vector<float> out(pr.out_size(), NAN);
    ops::SparseAttentionParams sp;
    sp.attn = pr.params(out.data());
    sp.top_k = k;
    ops::sparse_attention(std::span<const ops::SparseAttentionParams>(&sp, 1));
    EXPECT_LT(test::rel_error(out, want), 2e-6) << "k " << k;
  }
}

TEST(SparseAttention, TopKMatchesTheMaskOfItsOwnLargestScores) {
  Problem pr;
  const int64_t k = 37, w = pr.width();
  // The reference selects per (query, head) the k keys of largest score, in double.
  const Mask top = [&](int64_t pos, int64_t h, int64_t j) {
    const int64_t t = pos - pr.before;
    const float* qh = pr.q.data() + (t * pr.heads + h) * w;
    std::vector<std::pair<double, int64_t>> s;
    for (int64_t i = 0; i <= pos; ++i) {
      double d = 0;
      for (int64_t c = 0; c < w; ++c) d += double(qh[c]) * pr.rows[i * w + c];
      s.push_back({-d, i});
    }
    std::sort(s.begin(), s.end());
    for (int64_t i = 0; i < k; ++i)
      if (s[i].second == j) return true;
    return false;
  };
  std::vector<float> out(pr.out_size(), NAN);
  ops::SparseAttentionParams sp;
  sp.attn = pr.params(out.data());
  sp.top_k = k;
  ops::sparse_attention(std::span<const ops::SparseAttentionParams>(&sp, 1));
  EXPECT_LT(test::rel_error(out, masked_reference(pr, top)), 2e-6);
}

TEST(SparseAttention, FullBlockLayoutIsDense) {
  Problem pr;
  const int64_t block = 16, blocks = (pr.keys() + block - 1) / block;
  const Lists l = build(pr, blocks * block, [&](int64_t pos, int32_t* out) {
    return ops::select_blocks(pos, block, blocks, 0, out);
  });
  EXPECT_LT(test::rel_error(sparse(pr, l), dense(pr)), 2e-6);
  // A layout whose global blocks cover everything is dense too.
  const Lists g = build(pr, (blocks + 1) * block, [&](int64_t pos, int32_t* out) {
    return ops::select_blocks(pos, block, 1, blocks, out);
  });
  EXPECT_LT(test::rel_error(sparse(pr, g), dense(pr)), 2e-6);
}

TEST(SparseAttention, BlockLayoutEqualsItsExplicitMask) {
  Problem pr;
  const int64_t block = 16, local = 3, global = 2;
  const Lists l = build(pr, (local + global) * block, [&](int64_t pos, int32_t* out) {
    return ops::select_blocks(pos, block, local, global, out);
  });
  const Mask mask = [&](int64_t pos, int64_t, int64_t j) {
    return pos / block - j / block < local || j / block < global;
  };
  EXPECT_LT(test::rel_error(sparse(pr, l), masked_reference(pr, mask)), 2e-6);
}

TEST(SparseAttention, SlidingWindowEqualsDenseWithTheExplicitMask) {
  Problem pr;
  for (int64_t window : {1, 7, 256, 1000}) {
    const Lists l = build(pr, window, [&](int64_t pos, int32_t* out) {
      return ops::select_window(pos, window, out);
    });
    const Mask mask = [&](int64_t pos, int64_t, int64_t j) { return j > pos - window; };
    EXPECT_LT(test::rel_error(sparse(pr, l), masked_reference(pr, mask)), 2e-6)
        << "window " << window;
  }
  // A window at least the context is dense.
  const Lists all = build(pr, pr.keys(), [&](int64_t pos, int32_t* out) {
    return ops::select_window(pos, pr.keys(), out);
  });
  EXPECT_LT(test::rel_error(sparse(pr, all), dense(pr)), 2e-6);
}

// Values one-hot per key (naive layout, value width = keys): the output is the weight vector.
TEST(SparseAttention, KeysLeftOutGetExactlyZeroWeight) {
  const int64_t keys = 40, heads = 3, qk = 8, before = keys - 2, queries = 2;
  const std::vector<float> q = test::random_normal(queries * heads * qk, 3);
  const std::vector<float> k = test::random_normal(keys * heads * qk, 4);
  std::vector<float> v(keys * heads * keys, 0.0f);
  for (int64_t j = 0; j < keys; ++j)
    for (int64_t h = 0; h < heads; ++h) v[(j * heads + h) * keys + j] = 1.0f;
  for (const bool per_head : {false, true}) {
    std::vector<int32_t> indices, counts;
    const int64_t lists = per_head ? queries * heads : queries, cap = 6;
    for (int64_t l = 0; l < lists; ++l) {
      // Different keys for every list: 3 + l, 9 + l, 20 + l (and the query itself's neighbour).
      for (int32_t j : {3, 9, 20, 30}) indices.push_back(j + static_cast<int32_t>(l));
      indices.push_back(-1);
      indices.push_back(-1);
      counts.push_back(4);
    }
    std::vector<float> out(queries * heads * keys, NAN);
    ops::SparseAttentionParams sp;
    ops::AttentionParams& p = sp.attn;
    p.q = q.data();
    p.q_token_stride = heads * qk;
    p.q_head_stride = qk;
    p.k = ops::KvView::contiguous(k.data(), heads * qk);
    p.k_head_stride = qk;
    p.v = ops::KvView::contiguous(v.data(), heads * keys);
    p.v_head_stride = keys;
    p.out = out.data();
    p.out_token_stride = heads * keys;
    p.out_head_stride = keys;
    p.num_queries = queries;
    p.num_heads = heads;
    p.num_kv_heads = heads;
    p.qk_dim = qk;
    p.v_dim = keys;
    p.context_before = before;
    p.scale = 0.3f;
    sp.lists = {indices.data(), counts.data(), cap, per_head};
    ops::sparse_attention(std::span<const ops::SparseAttentionParams>(&sp, 1));
    for (int64_t t = 0; t < queries; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t l = per_head ? t * heads + h : t;
        const int32_t* sel = indices.data() + l * cap;
        double total = 0;
        for (int64_t j = 0; j < keys; ++j) {
          const float w = out[(t * heads + h) * keys + j];
          if (std::find(sel, sel + 4, j) == sel + 4) {
            EXPECT_EQ(w, 0.0f) << "t " << t << " h " << h << " key " << j;
          } else {
            EXPECT_GT(w, 0.0f);
          }
          total += w;
        }
        EXPECT_NEAR(total, 1.0, 1e-6);
      }
    }
  }
}

TEST(SparseAttention, BadListsAreRefusedByName) {
  Problem pr;
  pr.queries = 1;
  std::vector<float> out(pr.out_size());
  const auto run = [&](std::vector<int32_t> idx, int32_t count) {
    ops::SparseAttentionParams sp;
    sp.attn = pr.params(out.data());
    const std::vector<int32_t> counts = {count};
    sp.lists = {idx.data(), counts.data(), static_cast<int64_t>(idx.size()), false};
    try {
      ops::sparse_attention(std::span<const ops::SparseAttentionParams>(&sp, 1));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(run({1, 2}, 0), "sparse_attention: sequence 0: list 0: holds 0 keys, expected 1 to 2");
  EXPECT_EQ(run({1, 2}, 3), "sparse_attention: sequence 0: list 0: holds 3 keys, expected 1 to 2");
  EXPECT_EQ(run({5, 301}, 2),
            "sparse_attention: sequence 0: list 0: key 301 is outside the keys 0..300 this query "
            "may see");
  EXPECT_EQ(run({-1, 2}, 2),
            "sparse_attention: sequence 0: list 0: key -1 is outside the keys 0..300 this query "
            "may see");
  EXPECT_EQ(run({7, 7}, 2),
            "sparse_attention: sequence 0: list 0: keys are not strictly ascending");
  EXPECT_EQ(run({7, 9}, 2), "no error");
}

TEST(SparseSpec, ParsesPrintsAndRefuses) {
  EXPECT_EQ(parse_sparse_spec("topk:k=64").to_string(), "topk:k=64");
  EXPECT_EQ(parse_sparse_spec("dsa").to_string(), "dsa:k=2048");
  EXPECT_EQ(parse_sparse_spec("block:size=32,global=0,dense-heads=2").to_string(),
            "block:size=32,local=4,global=0,dense-heads=2");
  EXPECT_EQ(parse_sparse_spec("window:size=128").window, 128);
  const auto error = [](const std::string& text) {
    try {
      parse_sparse_spec(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("ring"),
            "sparse: 'ring': unknown pattern 'ring' (use dense, window, block, topk or dsa)");
  EXPECT_EQ(error("topk:k=abc"), "sparse: 'topk:k=abc': k: 'abc' is not an integer");
  EXPECT_EQ(error("topk:size=3"), "sparse: 'topk:size=3': unknown key 'size' for topk");
  EXPECT_EQ(error("window:size=0"), "sparse: size: must be between 1 and 2147483647, got 0");
  EXPECT_EQ(error("block:local=0"), "sparse: local: must be between 1 and 2147483647, got 0");
  EXPECT_EQ(error("topk:k=4,"), "sparse: 'topk:k=4,': trailing ','");
  EXPECT_EQ(error("topk:"), "sparse: 'topk:': nothing after ':'");
  SparseSpec spec = parse_sparse_spec("topk:k=8,dense-heads=5");
  try {
    spec.validate(4);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "sparse: dense-heads: 5 is more than the 4 heads");
  }
}

}  // namespace
}  // namespace mla
