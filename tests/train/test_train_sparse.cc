// Sparse attention in training (train/attention.h with AttentionLayout::sparse, and the MLA
// block): keys outside the pattern get probability exactly 0, a sliding window equals the
// explicit mask, top-k with k >= the sequence is dense, and every sparse path's backward (window,
// block, top-k, hybrid dense heads; the op and the whole MLA block in its naive and its absorbed
// form) matches 4-point finite differences in double, and the two forms are the same function.
// Configs: the sparse fields round-trip through JSON and are validated.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "mla/dsa.h"
#include "mla/error.h"
#include "mla/model_lm.h"
#include "mla/weights.h"
#include "train/attention.h"
#include "train/grad_check.h"
#include "train/mla_block.h"

namespace mla::train {
namespace {

constexpr double kTol = 1e-7;

AttentionLayout layout(const char* spec) {
  AttentionLayout l;
  l.batch = 2;
  l.seq = 9;
  l.num_heads = 3;
  l.num_kv_heads = 3;
  l.qk_dim = 4;
  l.v_dim = 3;
  l.q_head_stride = l.k_head_stride = 4;
  l.q_token_stride = l.k_token_stride = 12;
  l.v_head_stride = l.out_head_stride = 3;
  l.v_token_stride = l.out_token_stride = 9;
  l.scale = 0.8;
  l.sparse = parse_sparse_spec(spec);
  return l;
}

struct Pass {
  std::vector<double> q, k, v, out, probs;
};
Pass forward(const AttentionLayout& l) {
  const int64_t rows = l.batch * l.seq;
  Pass r{random_doubles(rows * l.q_token_stride, 1), random_doubles(rows * l.k_token_stride, 2),
         random_doubles(rows * l.v_token_stride, 3), std::vector<double>(rows * l.out_token_stride),
         std::vector<double>(l.batch * l.num_heads * l.seq * l.seq)};
  attention_forward(r.out.data(), r.probs.data(), r.q.data(), r.k.data(), r.v.data(), l);
  return r;
}

using Mask = std::function<bool(int64_t h, int64_t i, int64_t j)>;

// Probabilities are 0 exactly where the mask is off, positive where on, and rows sum to 1.
void expect_mask(const AttentionLayout& l, const Pass& r, const Mask& on, const char* what) {
  for (int64_t b = 0; b < l.batch; ++b)
    for (int64_t h = 0; h < l.num_heads; ++h)
      for (int64_t i = 0; i < l.seq; ++i) {
        double total = 0;
        for (int64_t j = 0; j < l.seq; ++j) {
          const double p = r.probs[((b * l.num_heads + h) * l.seq + i) * l.seq + j];
          if (j <= i && on(h, i, j)) {
            EXPECT_GT(p, 0.0) << what << " h " << h << " i " << i << " j " << j;
          } else {
            EXPECT_EQ(p, 0.0) << what << " h " << h << " i " << i << " j " << j;
          }
          total += p;
        }
        EXPECT_NEAR(total, 1.0, 1e-12);
      }
}

TEST(TrainSparse, MaskedKeysGetExactlyZeroProbability) {
  expect_mask(
      layout("window:size=3"), forward(layout("window:size=3")),
      [](int64_t, int64_t i, int64_t j) { return j > i - 3; }, "window");
  expect_mask(
      layout("block:size=2,local=2,global=1"), forward(layout("block:size=2,local=2,global=1")),
      [](int64_t, int64_t i, int64_t j) { return i / 2 - j / 2 < 2 || j / 2 < 1; }, "block");
  expect_mask(
      layout("window:size=2,dense-heads=1"), forward(layout("window:size=2,dense-heads=1")),
      [](int64_t h, int64_t i, int64_t j) { return h < 1 || j > i - 2; }, "hybrid");
  // Top-k keeps min(k, i + 1) keys per row.
  const AttentionLayout l = layout("topk:k=4");
  const Pass r = forward(l);
  for (int64_t row = 0; row < l.batch * l.num_heads * l.seq; ++row) {
    int64_t kept = 0;
    for (int64_t j = 0; j < l.seq; ++j) kept += r.probs[row * l.seq + j] > 0.0;
    EXPECT_EQ(kept, std::min<int64_t>(4, row % l.seq + 1));
  }
}

TEST(TrainSparse, WindowEqualsExplicitMaskAndTopKOverTheSequenceIsDense) {
  const Pass dense = forward(layout("dense"));
  for (const char* spec : {"topk:k=9", "topk:k=100", "window:size=9", "block:size=3,local=3"}) {
    const Pass r = forward(layout(spec));
    for (size_t i = 0; i < dense.out.size(); ++i)
      EXPECT_NEAR(r.out[i], dense.out[i], 1e-14) << spec;
  }
  // The window's output recomputed from the dense scores with the mask applied by hand.
  const AttentionLayout l = layout("window:size=3");
  const Pass r = forward(l);
  for (int64_t b = 0; b < l.batch; ++b)
    for (int64_t h = 0; h < l.num_heads; ++h)
      for (int64_t i = 0; i < l.seq; ++i) {
        std::vector<double> p(l.seq, 0.0);
        double m = -INFINITY, total = 0;
        for (int64_t j = std::max<int64_t>(0, i - 2); j <= i; ++j) {
          double s = 0;
          for (int64_t c = 0; c < l.qk_dim; ++c)
            s += r.q[(b * l.seq + i) * l.q_token_stride + h * l.q_head_stride + c] *
                 r.k[(b * l.seq + j) * l.k_token_stride + h * l.k_head_stride + c];
          p[j] = s * l.scale;
          m = std::max(m, p[j]);
        }
        for (int64_t j = std::max<int64_t>(0, i - 2); j <= i; ++j)
          total += (p[j] = std::exp(p[j] - m));
        for (int64_t c = 0; c < l.v_dim; ++c) {
          double o = 0;
          for (int64_t j = std::max<int64_t>(0, i - 2); j <= i; ++j)
            o += p[j] / total * r.v[(b * l.seq + j) * l.v_token_stride + h * l.v_head_stride + c];
          EXPECT_NEAR(r.out[(b * l.seq + i) * l.out_token_stride + h * l.out_head_stride + c], o,
                      1e-13);
        }
      }
}

TEST(TrainSparse, OpGradientsMatchFiniteDifferences) {
  for (const char* spec : {"window:size=3", "block:size=2,local=1,global=1", "topk:k=3",
                           "topk:k=2,dense-heads=1", "window:size=2,dense-heads=2"}) {
    const AttentionLayout l = layout(spec);
    Pass r = forward(l);
    const std::vector<double> dout = random_doubles(r.out.size(), 9);
    auto loss = [&] {
      attention_forward(r.out.data(), r.probs.data(), r.q.data(), r.k.data(), r.v.data(), l);
      return dot(r.out, dout, r.out.size());
    };
    loss();
    std::vector<double> dq(r.q.size()), dk(r.k.size()), dv(r.v.size());
    attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), r.probs.data(), r.q.data(),
                       r.k.data(), r.v.data(), l);
    for (auto [name, x, g] : {std::tuple{"dq", &r.q, &dq}, {"dk", &r.k, &dk}, {"dv", &r.v, &dv}}) {
      const double e = gradient_error(*x, *g, loss);
      std::printf("[grad] sparse attention %-32s %s %.2e\n", spec, name, e);
      EXPECT_LT(e, kTol) << spec << " " << name;
    }
  }
}

// DSA's attention in training: the lightning indexer's top-k lists (computed by the inference
// indexer on random inputs) become the key mask; the kept keys' attention is differentiated.
TEST(TrainSparse, DsaSelectionMaskAndGradients) {
  const MlaConfig model = preset_config("tiny");
  DsaConfig cfg;
  cfg.num_heads = 3;
  cfg.head_dim = 16;
  DsaIndexer indexer(model, cfg, DsaWeights::random(model, cfg, 4));
  for (const char* spec : {"dsa:k=3", "dsa:k=3,dense-heads=1"}) {
    AttentionLayout l = layout(spec);
    const int64_t k = 3, s = l.seq;
    std::vector<uint8_t> mask(static_cast<size_t>(l.batch * s * s), 0);
    // Both sequences get the same indexer inputs, hence the same selection (the mask check
    // below reads sequence 0's); their queries, keys and values differ.
    for (int64_t b = 0; b < l.batch; ++b) {
      const std::vector<double> xd = random_doubles(s * 64, 40), cd = random_doubles(s * 32, 50);
      const std::vector<float> x(xd.begin(), xd.end()), cq(cd.begin(), cd.end());
      PagedKvPool pool(16, 4, 4);
      const std::vector<PagedKvPool::SeqId> ids = {pool.add_sequence()};
      pool.reserve(ids, std::vector<int64_t>{s});
      std::vector<int32_t> lists(static_cast<size_t>(s * k)), counts(static_cast<size_t>(s));
      indexer.select(x.data(), cq.data(), ids, std::vector<int64_t>{s}, pool, k, k, lists.data(),
                     counts.data());
      for (int64_t i = 0; i < s; ++i)
        for (int32_t c = 0; c < counts[static_cast<size_t>(i)]; ++c)
          mask[static_cast<size_t>((b * s + i) * s + lists[static_cast<size_t>(i * k + c)])] = 1;
    }
    l.key_mask = mask.data();
    Pass r = forward(l);
    expect_mask(
        l, r,
        [&](int64_t h, int64_t i, int64_t j) {
          return h < l.sparse.dense_heads || mask[static_cast<size_t>(i * s + j)] != 0;
        },
        spec);
    const std::vector<double> dout = random_doubles(r.out.size(), 9);
    auto loss = [&] {
      attention_forward(r.out.data(), r.probs.data(), r.q.data(), r.k.data(), r.v.data(), l);
      return dot(r.out, dout, r.out.size());
    };
    loss();
    std::vector<double> dq(r.q.size()), dk(r.k.size()), dv(r.v.size());
    attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), r.probs.data(), r.q.data(),
                       r.k.data(), r.v.data(), l);
    for (auto [name, x, g] : {std::tuple{"dq", &r.q, &dq}, {"dk", &r.k, &dk}, {"dv", &r.v, &dv}}) {
      const double e = gradient_error(*x, *g, loss);
      std::printf("[grad] sparse attention %-32s %s %.2e\n", spec, name, e);
      EXPECT_LT(e, kTol) << spec << " " << name;
    }
  }
}

TEST(TrainSparse, MlaBlockGradientsMatchFiniteDifferences) {
  MlaConfig c;
  c.hidden_size = 12;
  c.num_heads = 3;
  c.q_lora_rank = 5;
  c.kv_lora_rank = 6;
  c.qk_nope_head_dim = 4;
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 5;
  c.max_position_embeddings = 64;
  c.validate();
  std::map<std::string, std::vector<double>> value, grad;
  uint64_t seed = 300;
  MlaWeights names;
  names.for_each_tensor(
      c, [&](const std::string& name, const std::vector<int64_t>& shape, std::vector<float>&) {
        const int64_t n = shape.size() == 1 ? shape[0] : shape[0] * shape[1];
        value[name] = random_doubles(static_cast<size_t>(n), ++seed,
                                     shape.size() == 1 ? 0.2 : 1.0 / std::sqrt(double(shape[1])));
        if (shape.size() == 1)
          for (double& x : value[name]) x += 1.0;
      });
  const auto bind = [&](std::map<std::string, std::vector<double>>& m) {
    MlaTensors<double> w;
    w.for_each_tensor(c, [&m](const std::string& name, const std::vector<int64_t>&, double*& slot) {
      slot = m.count(name) ? m[name].data() : nullptr;
    });
    return w;
  };
  const int64_t b = 2, s = 7, n = b * s, d = c.hidden_size;
  std::map<bool, std::map<std::string, std::vector<double>>> outputs;
  for (const bool absorbed : {false, true}) {
    for (const char* spec :
         {"dense", "window:size=3", "block:size=2,local=1,global=1", "topk:k=3,dense-heads=1"}) {
      const std::string what = std::string(absorbed ? "absorbed " : "naive ") + spec;
      MlaBlock<double> block(c);
      block.set_sparse(parse_sparse_spec(spec));
      block.set_absorbed(absorbed);
      typename MlaBlock<double>::Scratch scratch;
      auto x = random_doubles(n * d, 100), r = random_doubles(n * d, 101);
      std::vector<double> out(n * d);
      auto loss = [&] {
        block.forward(out.data(), x.data(), bind(value), b, s);
        return dot(out, r, out.size());
      };
      loss();
      outputs[absorbed][spec] = out;
      for (auto& [name, v] : value) grad[name].assign(v.size(), 0.0);
      std::vector<double> dx(x.size(), 0.0);
      block.backward(dx.data(), bind(grad), r.data(), x.data(), bind(value), scratch);
      double worst = gradient_error(x, dx, loss);
      for (auto& [name, v] : value)
        worst = std::max(worst, gradient_error(v, grad[name], loss, 40));
      std::printf("[grad] MLA block %-40s %.2e\n", what.c_str(), worst);
      EXPECT_LT(worst, kTol) << what;
    }
  }
  // The absorbed form is the same function as the naive one, under every pattern.
  for (const auto& [spec, naive] : outputs[false]) {
    const std::vector<double>& absorbed = outputs[true][spec];
    double diff = 0;
    for (size_t i = 0; i < naive.size(); ++i)
      diff = std::max(diff, std::fabs(naive[i] - absorbed[i]));
    EXPECT_LT(diff, 1e-12) << spec;
  }
}

// The absorbed training form folds kv_b into the query and the output; kv_b's biases and
// dropout on the probabilities have no place there, so it refuses them by name.
TEST(TrainSparse, AbsorbedFormRefusesBiasesAndAttentionDropout) {
  MlaConfig c;
  c.hidden_size = 12;
  c.num_heads = 3;
  c.kv_lora_rank = 6;
  c.qk_nope_head_dim = 4;
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 5;
  c.max_position_embeddings = 64;
  const std::string expected =
      "mla_form absorbed: projection_bias and attention_dropout need the naive form";
  for (const int option : {0, 1}) {
    MlaConfig with = c;
    if (option == 0) with.projection_bias = true;
    if (option == 1) with.attention_dropout = 0.1;
    MlaBlock<double> block(with);
    try {
      block.set_absorbed(true);
      ADD_FAILURE() << "accepted option " << option;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), expected);
    }
    EXPECT_NO_THROW(block.set_absorbed(false));
  }
  MlaBlock<double> plain(c);
  EXPECT_NO_THROW(plain.set_absorbed(true));
}

TEST(TrainSparse, ConfigsRoundTripAndAreValidated) {
  LmShape s;
  s.sparse = parse_sparse_spec("topk:k=8,dense-heads=1");
  s.dense_layers = 1;
  const LmConfig c = lm_config_from_shape(s);
  const LmConfig back = parse_lm_config_json(lm_config_to_json(c), "c.json");
  EXPECT_EQ(back.sparse.to_string(), "topk:k=8,dense-heads=1");
  EXPECT_EQ(back.dense_layers, 1);
  EXPECT_FALSE(back.absorbed);
  EXPECT_TRUE(parse_lm_config_json(R"({"mla_form": "absorbed"})", "c.json").absorbed);
  EXPECT_FALSE(back.layer_sparse(0).is_sparse());
  EXPECT_TRUE(back.layer_sparse(1).is_sparse());
  const auto error = [](const std::string& json) {
    try {
      parse_lm_config_json(json, "c.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(R"({"sparse": "dsa"})"),
            "c.json: lm config: sparse: dsa is not trainable here (its indexer learns from its own "
            "loss); use window, block or topk");
  EXPECT_EQ(error(R"({"sparse": "topk:k=2,dense-heads=9"})"),
            "c.json: lm config: sparse: dense-heads: 9 is more than the 4 heads");
  EXPECT_EQ(error(R"({"sparse": "window:size=2", "attention": "gqa"})"),
            "c.json: lm config: sparse: only the mla attention is sparse");
  EXPECT_EQ(
      error(R"({"sparse": "wide"})"),
      "c.json: sparse: 'wide': unknown pattern 'wide' (use dense, window, block, topk or dsa)");
  EXPECT_EQ(error(R"({"mla_form": "latent"})"), "c.json: mla_form: use naive or absorbed");
  EXPECT_EQ(error(R"({"mla_form": "absorbed", "attention": "mqa"})"),
            "c.json: lm config: mla_form: absorbed is an MLA form (attention is mqa)");
  EXPECT_EQ(error(R"({"dense_layers": 3})"),
            "c.json: lm config: dense_layers: must be in [0, num_layers = 2], got 3");
}

}  // namespace
}  // namespace mla::train
