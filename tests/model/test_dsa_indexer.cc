// DeepSeek-V3.2's lightning indexer (include/mla/dsa.h) against a double-precision restatement
// of its math (LayerNorm'd key, rotate-half RoPE on the first Dr entries, weighted ReLU scores
// summed over heads, top-k), and DSA inside MlaLayer: k >= context is dense attention, the
// absorbed and naive paths select and attend alike, decode through the pools equals one prefill.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "mla/dsa.h"
#include "mla/error.h"
#include "mla/layer.h"
#include "mla/safetensors.h"
#include "mla/weights.h"
#include "model/rope_params.h"
#include "ops/rope.h"
#include "test_util.h"

namespace mla {
namespace {

using test::random_normal;
using test::rel_error;

MlaConfig model() {
  MlaConfig c = preset_config("tiny");  // d 64, Rq 32, Dr 8
  return c;
}
DsaConfig dsa(int64_t top_k = 2048) {
  DsaConfig d;
  d.num_heads = 3;
  d.head_dim = 16;
  d.top_k = top_k;
  return d;
}

// Rotate-half RoPE in double with the model's frequencies: (v[i], v[i + Dr/2]).
void rope_half(std::vector<double>& v, size_t at, const MlaConfig& c, int64_t pos) {
  const std::vector<float> f = ops::rope_frequencies(rope_params(c));
  const size_t half = f.size();
  for (size_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(static_cast<float>(pos) * f[i]);
    const double a = v[at + i], b = v[at + i + half];
    v[at + i] = a * std::cos(angle) - b * std::sin(angle);
    v[at + i + half] = a * std::sin(angle) + b * std::cos(angle);
  }
}

std::vector<double> matvec(const std::vector<float>& w, const float* x, int64_t out, int64_t in) {
  std::vector<double> y(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) y[o] += double(w[o * in + i]) * x[i];
  return y;
}

TEST(DsaIndexer, KeysAndQueriesFollowTheV32Math) {
  const MlaConfig c = model();
  const DsaConfig cfg = dsa();
  const DsaWeights w = DsaWeights::random(c, cfg, 5);
  DsaIndexer indexer(c, cfg, w);
  const int64_t n = 3, di = cfg.head_dim, hi = cfg.num_heads;
  const std::vector<float> x = random_normal(n * c.hidden_size, 1), cq = random_normal(n * 32, 2);
  const std::vector<int64_t> pos = {0, 5, 300};
  std::vector<float> k(n * di), q(n * hi * di), hw(n * hi);
  indexer.keys(x.data(), n, pos.data(), k.data());
  indexer.queries(x.data(), cq.data(), n, pos.data(), q.data(), hw.data());
  std::vector<float> k_ref, q_ref, w_ref;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> kk = matvec(w.wk, x.data() + i * c.hidden_size, di, c.hidden_size);
    double mean = 0, var = 0;
    for (double v : kk) mean += v / di;
    for (double v : kk) var += (v - mean) * (v - mean) / di;
    for (int64_t j = 0; j < di; ++j)
      kk[j] = (kk[j] - mean) / std::sqrt(var + 1e-6) * w.k_norm[j] + w.k_norm_bias[j];
    rope_half(kk, 0, c, pos[i]);
    k_ref.insert(k_ref.end(), kk.begin(), kk.end());
    std::vector<double> qq = matvec(w.wq_b, cq.data() + i * 32, hi * di, 32);
    for (int64_t h = 0; h < hi; ++h) rope_half(qq, static_cast<size_t>(h * di), c, pos[i]);
    q_ref.insert(q_ref.end(), qq.begin(), qq.end());
    for (double v : matvec(w.weights_proj, x.data() + i * c.hidden_size, hi, c.hidden_size))
      w_ref.push_back(static_cast<float>(v / std::sqrt(double(hi * di))));
  }
  EXPECT_LT(rel_error(k, k_ref), 1e-5);
  EXPECT_LT(rel_error(q, q_ref), 1e-5);
  EXPECT_LT(rel_error(hw, w_ref), 1e-5);
  // The interleaved convention (MLA's own) gives other keys at a non-zero position.
  std::vector<float> inter(k.begin() + di, k.begin() + 2 * di);
  std::vector<float> cos_sin(8);
  ops::rope_cos_sin(ops::rope_frequencies(rope_params(c)), 1.0f, 5, cos_sin.data());
  std::vector<float> raw(di);
  indexer.keys(x.data() + c.hidden_size, 1, std::vector<int64_t>{0}.data(), raw.data());
  ops::rope_apply(raw.data(), 1, di, 8, cos_sin.data());
  EXPECT_GT(rel_error(raw, inter), 1e-2);
}

// The indexer's tensors go through the one checkpoint loader, so FP8 e4m3 with 128x128 block
// scales reads as it does for the layer: wk (16, 64) in one block, 1.0 (0x38) and -1.0 (0xb8)
// times the scale 0.25; the other tensors stay float32.
TEST(DsaIndexer, LoadsFp8IndexerWeightsWithTheirBlockScales) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("mla_dsa_fp8_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const MlaConfig c = model();
  DsaWeights w = DsaWeights::random(c, dsa(), 3);
  SafetensorsWriter writer;
  const std::string prefix = layer_prefix(1);
  w.for_each_tensor(
      c, dsa(),
      [&](const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& data) {
        if (name == "indexer.wk.weight") {
          std::vector<std::byte> fp8(data.size(), std::byte{0x38});
          fp8[5] = std::byte{0xb8};
          writer.add_raw(prefix + name, DType::kF8E4M3, shape, fp8);
          writer.add(prefix + name + "_scale_inv", {1, 1}, std::vector<float>{0.25f});
        } else {
          writer.add(prefix + name, shape, data);
        }
      });
  writer.write((dir / "model.safetensors").string());
  const DsaWeights back = load_dsa_weights(CheckpointDir::open(dir.string()), c, dsa(), 1);
  ASSERT_EQ(back.wk.size(), w.wk.size());
  for (size_t i = 0; i < back.wk.size(); ++i) EXPECT_EQ(back.wk[i], i == 5 ? -0.25f : 0.25f);
  EXPECT_EQ(back.wq_b, w.wq_b);
  EXPECT_EQ(back.weights_proj, w.weights_proj);
  fs::remove_all(dir / "model.safetensors");
  SafetensorsWriter no_scales;
  no_scales.add_raw(prefix + "indexer.wk.weight", DType::kF8E4M3, {16, 64},
                    std::vector<std::byte>(16 * 64, std::byte{0x38}));
  no_scales.write((dir / "model.safetensors").string());
  try {
    load_dsa_weights(CheckpointDir::open(dir.string()), c, dsa(), 1);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    // The first tensor of the list is absent: the loader names it and what needs it.
    EXPECT_EQ(std::string(e.what()), dir.string() +
                                         ": missing tensor 'model.layers.1.self_attn.indexer.wq_b."
                                         "weight' (DSA needs DeepSeek-V3.2's indexer weights)");
  }
  fs::remove_all(dir);
}

TEST(DsaIndexer, SelectsTheTopKOfTheWeightedReluScores) {
  const MlaConfig c = model();
  const DsaConfig cfg = dsa();
  DsaIndexer indexer(c, cfg, DsaWeights::random(c, cfg, 6));
  const int64_t n = 50, k = 7, di = cfg.head_dim, hi = cfg.num_heads;
  const std::vector<float> x = random_normal(n * c.hidden_size, 3), cq = random_normal(n * 32, 4);
  PagedKvPool pool(di, 8, 8);
  const std::vector<PagedKvPool::SeqId> seqs = {pool.add_sequence()};
  // Prefill 20 tokens, then the other 30 as one chunk, as a layer would.
  std::vector<int32_t> lists(n * k, -1), counts(n, 0);
  for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 20}, {20, 50}}) {
    const std::vector<int64_t> count = {t1 - t0};
    pool.reserve(seqs, count);
    indexer.select(x.data() + t0 * c.hidden_size, cq.data() + t0 * 32, seqs, count, pool, k, k,
                   lists.data() + t0 * k, counts.data() + t0);
    pool.commit(seqs[0], t1 - t0);
  }
  std::vector<int64_t> pos(n);
  for (int64_t i = 0; i < n; ++i) pos[i] = i;
  std::vector<float> keys(n * di), q(n * hi * di), w(n * hi);
  indexer.keys(x.data(), n, pos.data(), keys.data());
  indexer.queries(x.data(), cq.data(), n, pos.data(), q.data(), w.data());
  for (int64_t t = 0; t < n; ++t) {
    std::vector<std::pair<double, int32_t>> scores;
    for (int64_t s = 0; s <= t; ++s) {
      double total = 0;
      for (int64_t h = 0; h < hi; ++h) {
        double dot = 0;
        for (int64_t j = 0; j < di; ++j) dot += double(q[(t * hi + h) * di + j]) * keys[s * di + j];
        total += w[t * hi + h] * std::max(dot, 0.0);
      }
      scores.push_back({-total, static_cast<int32_t>(s)});
    }
    std::sort(scores.begin(), scores.end());
    std::vector<int32_t> want;
    for (size_t i = 0; i < std::min<size_t>(k, scores.size()); ++i)
      want.push_back(scores[i].second);
    std::sort(want.begin(), want.end());
    ASSERT_EQ(counts[t], static_cast<int32_t>(want.size())) << "token " << t;
    EXPECT_EQ(std::vector<int32_t>(lists.begin() + t * k, lists.begin() + t * k + counts[t]), want)
        << "token " << t;
  }
}

// A layer over two sequences of 40 tokens: prefill `prefill`, then one token at a time.
std::vector<float> run_dsa(const SparseSpec& spec, AttentionPath path, int64_t prefill) {
  const MlaConfig c = model();
  MlaLayer layer(c, MlaWeights::random(c, 7));
  layer.set_indexer(DsaIndexer(c, dsa(), DsaWeights::random(c, dsa(), 8)));
  layer.set_sparse(spec);
  const int64_t batch = 2, seq = 40, d = c.hidden_size;
  const std::vector<float> x = random_normal(batch * seq * d, 9);
  std::vector<float> y(x.size());
  PagedKvPool pool(layer.paged_token_width(path), 8, 16), index_pool(16, 8, 16);
  const std::vector<PagedKvPool::SeqId> seqs = {pool.add_sequence(), pool.add_sequence()};
  index_pool.add_sequence();
  index_pool.add_sequence();
  for (int64_t t = 0; t < seq;) {
    const int64_t n = t == 0 ? prefill : 1;
    std::vector<float> xs(batch * n * d), ys(xs.size());
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(x.begin() + (b * seq + t) * d, n * d, xs.begin() + b * n * d);
    layer.forward(xs, seqs, std::vector<int64_t>(batch, n), pool, path, ys, index_pool);
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(ys.begin() + b * n * d, n * d, y.begin() + (b * seq + t) * d);
    t += n;
  }
  return y;
}

TEST(DsaLayer, TopKAtLeastTheContextIsDense) {
  const std::vector<float> dense = run_dsa(SparseSpec{}, AttentionPath::kAbsorbed, 40);
  for (AttentionPath path : {AttentionPath::kAbsorbed, AttentionPath::kNaive}) {
    for (int64_t prefill : {40, 9}) {
      EXPECT_LT(rel_error(run_dsa(parse_sparse_spec("dsa:k=40"), path, prefill), dense), 2e-5);
      EXPECT_LT(rel_error(run_dsa(parse_sparse_spec("dsa:k=2048"), path, prefill), dense), 2e-5);
    }
  }
}

TEST(DsaLayer, AbsorbedAndNaiveAgreeAndDecodeEqualsPrefill) {
  for (const char* text : {"dsa:k=6", "dsa:k=6,dense-heads=2"}) {
    const SparseSpec spec = parse_sparse_spec(text);
    const std::vector<float> want = run_dsa(spec, AttentionPath::kAbsorbed, 40);
    EXPECT_GT(rel_error(want, run_dsa(SparseSpec{}, AttentionPath::kAbsorbed, 40)), 1e-3);
    EXPECT_LT(rel_error(run_dsa(spec, AttentionPath::kNaive, 40), want), 2e-5) << text;
    EXPECT_LT(rel_error(run_dsa(spec, AttentionPath::kAbsorbed, 9), want), 2e-5) << text;
    EXPECT_LT(rel_error(run_dsa(spec, AttentionPath::kNaive, 9), want), 2e-5) << text;
  }
  // prefill() sets the pools up itself.
  const MlaConfig c = model();
  MlaLayer layer(c, MlaWeights::random(c, 7));
  layer.set_indexer(DsaIndexer(c, dsa(), DsaWeights::random(c, dsa(), 8)));
  layer.set_sparse(parse_sparse_spec("dsa:k=6"));
  const std::vector<float> x = random_normal(2 * 40 * c.hidden_size, 9);
  std::vector<float> y(x.size());
  layer.prefill(x, 2, 40, y, AttentionPath::kAbsorbed);
  EXPECT_LT(rel_error(y, run_dsa(parse_sparse_spec("dsa:k=6"), AttentionPath::kAbsorbed, 40)),
            2e-5);
}

TEST(DsaLayer, BadPoolsAndConfigsAreRefused) {
  const MlaConfig c = model();
  const auto error = [](const auto& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  DsaConfig bad = dsa();
  bad.head_dim = 6;
  EXPECT_EQ(error([&] { bad.validate(c); }), "dsa: head_dim: 6 cannot hold the 8 rotary entries");
  MlaLayer layer(c, MlaWeights::random(c, 7));
  MlaConfig other = c;
  other.q_lora_rank = 16;
  EXPECT_EQ(error([&] {
              layer.set_indexer(DsaIndexer(other, dsa(), DsaWeights::random(other, dsa(), 8)));
            }),
            "set_indexer: the indexer was made for another config (hidden 64, q_lora_rank 16, "
            "rope 8; the layer has 64, 32, 8)");
  layer.set_sparse(parse_sparse_spec("dsa:k=4"));
  {
    DsaIndexer indexer(c, dsa(), DsaWeights::random(c, dsa(), 8));
    PagedKvPool ipool(16, 8, 4);
    const std::vector<PagedKvPool::SeqId> ids = {ipool.add_sequence()};
    ipool.reserve(ids, std::vector<int64_t>{6});
    std::vector<float> xs(6 * 64), cq(6 * 32);
    std::vector<int32_t> lists(6 * 4), counts(6);
    EXPECT_EQ(error([&] {
                indexer.select(xs.data(), cq.data(), ids, std::vector<int64_t>{6}, ipool, 5, 4,
                               lists.data(), counts.data());
              }),
              "dsa: list capacity 4 is below min(top_k, longest sequence) = 5");
    EXPECT_EQ(error([&] {
                indexer.select(xs.data(), cq.data(), ids, std::vector<int64_t>{6, 1}, ipool, 4, 4,
                               lists.data(), counts.data());
              }),
              "dsa: one new-token count per sequence is needed");
  }
  PagedKvPool pool(layer.paged_token_width(AttentionPath::kAbsorbed), 8, 4), index_pool(16, 8, 4);
  const std::vector<PagedKvPool::SeqId> seqs = {pool.add_sequence()};
  std::vector<float> x(c.hidden_size), y(x.size());
  const std::vector<int64_t> one = {1};
  EXPECT_EQ(error([&] { layer.forward(x, seqs, one, pool, AttentionPath::kAbsorbed, y); }),
            "forward: DSA needs the lightning indexer's key pool: use the paged forward that "
            "takes one");
  EXPECT_EQ(
      error([&] { layer.forward(x, seqs, one, pool, AttentionPath::kAbsorbed, y, index_pool); }),
      "forward: DSA needs an indexer (MlaLayer::set_indexer)");
  layer.set_indexer(DsaIndexer(c, dsa(), DsaWeights::random(c, dsa(), 8)));
  EXPECT_EQ(
      error([&] { layer.forward(x, seqs, one, pool, AttentionPath::kAbsorbed, y, index_pool); }),
      "forward: sequence 0 is not in the index pool");
  index_pool.add_sequence();
  layer.set_sparse(SparseSpec{});
  layer.forward(x, seqs, one, pool, AttentionPath::kAbsorbed, y);  // dense: index pool untouched
  layer.set_sparse(parse_sparse_spec("dsa:k=4"));
  EXPECT_EQ(
      error([&] { layer.forward(x, seqs, one, pool, AttentionPath::kAbsorbed, y, index_pool); }),
      "forward: sequence 0 holds 0 tokens in the index pool and 1 in the cache");
  PagedKvPool wide(17, 8, 4);
  wide.add_sequence();
  EXPECT_EQ(error([&] { layer.forward(x, seqs, one, pool, AttentionPath::kAbsorbed, y, wide); }),
            "forward: the index pool holds rows of 17 numbers, the indexer needs 16");
  EXPECT_EQ(pool.length(seqs[0]), 1);
}

}  // namespace
}  // namespace mla
