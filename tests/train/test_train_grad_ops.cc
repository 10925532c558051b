// Every training op's backward against 4-point finite differences, in double precision: the ops
// are templates, so this runs the training code itself with T = double. The scalar checked is
// L = sum(out * R) for a fixed random R, so backward is seeded with dout = R. Gradient buffers
// start NON-zero (0.5) and the test subtracts that start: a backward that overwrites instead of
// accumulating fails. Tolerance: max |analytic - numeric| / max |numeric| <= 1e-7 (observed
// errors are 1e-10 .. 1e-12; the printed "[grad]" lines give them).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "mla/config.h"
#include "model/rope_params.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "train/activation.h"
#include "train/attention.h"
#include "train/cross_entropy.h"
#include "train/grad_check.h"
#include "train/linear.h"

namespace mla::train {
namespace {

constexpr double kTol = 1e-7;
constexpr double kStart = 0.5;

std::vector<double> start_buffer(size_t n) {
  return std::vector<double>(n, kStart);
}

std::vector<double> minus_start(std::vector<double> g) {
  for (double& v : g) v -= kStart;
  return g;
}

void expect_grad(const std::string& what, std::vector<double>& x, const std::vector<double>& g,
                 const std::function<double()>& loss) {
  const double err = gradient_error(x, minus_start(g), loss);
  std::printf("[grad] %-40s %.2e\n", what.c_str(), err);
  EXPECT_LT(err, kTol) << what;
}

TEST(TrainGradOps, Linear) {
  const int64_t n = 5, c = 7, oc = 3;
  auto x = random_doubles(n * c, 1), w = random_doubles(oc * c, 2), r = random_doubles(n * oc, 3);
  std::vector<double> out(n * oc);
  auto loss = [&] {
    linear_forward(out.data(), x.data(), w.data(), n, c, oc);
    return dot(out, r, out.size());
  };
  auto dx = start_buffer(x.size()), dw = start_buffer(w.size());
  linear_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), n, c, oc);
  expect_grad("linear dinp", x, dx, loss);
  expect_grad("linear dw", w, dw, loss);
}

TEST(TrainGradOps, Embedding) {
  const int64_t n = 9, c = 4, v = 5;
  const std::vector<int32_t> tokens = {0, 3, 3, 1, 4, 0, 3, 2, 2};  // repeats must add up
  auto wte = random_doubles(v * c, 4), r = random_doubles(n * c, 5);
  std::vector<double> out(n * c);
  auto loss = [&] {
    embedding_forward(out.data(), tokens.data(), wte.data(), n, c);
    return dot(out, r, out.size());
  };
  auto dwte = start_buffer(wte.size());
  embedding_backward(dwte.data(), r.data(), tokens.data(), n, c);
  expect_grad("embedding dwte", wte, dwte, loss);
}

TEST(TrainGradOps, RmsNormStrided) {
  // Rows of width 6 inside rows of 9 (like c_kv inside the kv_a output), output stride 7.
  const int64_t n = 4, c = 6, in_stride = 9, out_stride = 7;
  auto x = random_doubles(n * in_stride, 6), w = random_doubles(c, 7, 0.5),
       r = random_doubles(n * out_stride, 8);
  for (double& v : w) v += 1.0;
  std::vector<double> out(n * out_stride, 0.0), rstd(n);
  auto loss = [&] {
    ops::rms_norm_forward(out.data(), rstd.data(), x.data(), w.data(), n, c, 1e-6, in_stride,
                          out_stride);
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < c; ++j) s += out[i * out_stride + j] * r[i * out_stride + j];
    }
    return s;
  };
  loss();
  auto dx = start_buffer(x.size()), dw = start_buffer(w.size());
  ops::rms_norm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), rstd.data(), n, c,
                         in_stride, out_stride);
  expect_grad("rmsnorm dinp (strided)", x, dx, loss);
  expect_grad("rmsnorm dw", w, dw, loss);
}

TEST(TrainGradOps, LayerNorm) {
  // Contiguous rows (the model's norms), then rows of 8 inside rows of 11 with output stride 10
  // (an MLA latent norm).
  for (const auto& [in_stride, out_stride] : {std::pair<int64_t, int64_t>{8, 8}, {11, 10}}) {
    const int64_t n = 4, c = 8;
    auto x = random_doubles(n * in_stride, 9), w = random_doubles(c, 10), b = random_doubles(c, 11),
         r = random_doubles(n * out_stride, 12);
    std::vector<double> out(n * out_stride), mean(n), rstd(n);
    auto loss = [&] {
      ops::layer_norm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), n,
                              c, 1e-5, in_stride, out_stride);
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < c; ++j) sum += out[i * out_stride + j] * r[i * out_stride + j];
      }
      return sum;
    };
    loss();
    auto dx = start_buffer(x.size()), dw = start_buffer(c), db = start_buffer(c);
    ops::layer_norm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(),
                             mean.data(), rstd.data(), n, c, in_stride, out_stride);
    expect_grad("layernorm dinp", x, dx, loss);
    expect_grad("layernorm dw", w, dw, loss);
    expect_grad("layernorm db", b, db, loss);
  }
}

TEST(TrainGradOps, RopeWithYarnAmplitude) {
  MlaConfig c = preset_config("tiny");
  c.qk_rope_head_dim = 8;
  c.rope_scaling.type = RopeScalingType::kYarn;  // amplitude != 1 exercises the transpose
  c.rope_scaling.factor = 40.0;
  c.rope_scaling.original_max_position_embeddings = 16;
  c.rope_scaling.mscale = 1.0;
  c.rope_scaling.mscale_all_dim = 0.5;
  const int64_t b = 2, s = 5, vectors = 3, stride = 3 * 11;  // slices at 0, 11, 22 of a token
  const std::vector<float> table = ops::rope_table(rope_params(c), s);
  auto x = random_doubles(b * s * stride, 13), r = random_doubles(x.size(), 14);
  std::vector<double> y;
  auto loss = [&] {
    y = x;
    ops::rope_apply_rows(y.data(), b * s, stride, vectors, 11, 8, table.data(), s);
    return dot(y, r, y.size());
  };
  // Backward turns dL/dy (= r on the rotated slices, r elsewhere too) into dL/dx in place.
  std::vector<double> g = r;
  ops::rope_apply_rows(g.data(), b * s, stride, vectors, 11, 8, table.data(), s,
                       ops::RopeDirection::kTranspose);
  for (double& v : g) v += kStart;
  expect_grad("rope (yarn amplitude) dx", x, g, loss);
}

struct AttentionCase {
  const char* name;
  int64_t heads, kv_heads, qk_dim, v_dim;
};

TEST(TrainGradOps, CausalAttention) {
  for (const AttentionCase& ac :
       {AttentionCase{"mha", 3, 3, 5, 4}, AttentionCase{"gqa", 4, 2, 6, 3},
        AttentionCase{"mqa", 3, 1, 4, 5}}) {
    AttentionLayout l;
    l.batch = 2;
    l.seq = 5;
    l.num_heads = ac.heads;
    l.num_kv_heads = ac.kv_heads;
    l.qk_dim = ac.qk_dim;
    l.v_dim = ac.v_dim;
    // Padded strides: every head and token has unused slots the kernel must not touch.
    l.q_head_stride = ac.qk_dim + 1;
    l.q_token_stride = ac.heads * l.q_head_stride + 2;
    l.k_head_stride = ac.qk_dim + 2;
    l.k_token_stride = ac.kv_heads * l.k_head_stride + 1;
    l.v_head_stride = ac.v_dim + 1;
    l.v_token_stride = ac.kv_heads * l.v_head_stride + 3;
    l.out_head_stride = ac.v_dim;
    l.out_token_stride = ac.heads * ac.v_dim;
    l.scale = 0.7;
    const int64_t rows = l.batch * l.seq;
    auto q = random_doubles(rows * l.q_token_stride, 20),
         k = random_doubles(rows * l.k_token_stride, 21);
    auto v = random_doubles(rows * l.v_token_stride, 22),
         r = random_doubles(rows * l.out_token_stride, 23);
    std::vector<double> out(rows * l.out_token_stride),
        probs(l.batch * l.num_heads * l.seq * l.seq);
    auto loss = [&] {
      attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), l);
      return dot(out, r, out.size());
    };
    loss();
    auto dq = start_buffer(q.size()), dk = start_buffer(k.size()), dv = start_buffer(v.size());
    attention_backward(dq.data(), dk.data(), dv.data(), r.data(), probs.data(), q.data(), k.data(),
                       v.data(), l);
    expect_grad(std::string("attention ") + ac.name + " dq", q, dq, loss);
    expect_grad(std::string("attention ") + ac.name + " dk", k, dk, loss);
    expect_grad(std::string("attention ") + ac.name + " dv", v, dv, loss);
  }
}

TEST(TrainGradOps, GeluAndSwiglu) {
  const int64_t n = 40;
  auto x = random_doubles(n, 30, 2.0), up = random_doubles(n, 31), r = random_doubles(n, 32);
  std::vector<double> out(n);
  auto gelu_loss = [&] {
    gelu_forward(out.data(), x.data(), n);
    return dot(out, r, n);
  };
  auto dx = start_buffer(n);
  gelu_backward(dx.data(), r.data(), x.data(), n);
  expect_grad("gelu dinp", x, dx, gelu_loss);

  auto swiglu_loss = [&] {
    swiglu_forward(out.data(), x.data(), up.data(), n);
    return dot(out, r, n);
  };
  auto dgate = start_buffer(n), dup = start_buffer(n);
  swiglu_backward(dgate.data(), dup.data(), r.data(), x.data(), up.data(), n);
  expect_grad("swiglu dgate", x, dgate, swiglu_loss);
  expect_grad("swiglu dup", up, dup, swiglu_loss);
}

TEST(TrainGradOps, DropoutIsSeededAndLinear) {
  const int64_t n = 4000;
  const double p = 0.3;
  auto x = random_doubles(n, 40), r = random_doubles(n, 41);
  std::vector<double> out(n), again(n);
  const uint64_t key = dropout_key(7, 3, 1);
  dropout_forward(out.data(), x.data(), n, p, key);
  dropout_forward(again.data(), x.data(), n, p, key);
  EXPECT_EQ(out, again);  // deterministic in the key
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (out[i] == 0.0) {
      ++dropped;
    } else {
      EXPECT_NEAR(out[i], x[i] / (1 - p), 1e-15);
    }
  }
  EXPECT_NEAR(static_cast<double>(dropped) / n, p, 0.03);
  dropout_forward(again.data(), x.data(), n, p, dropout_key(7, 4, 1));
  EXPECT_NE(out, again);  // another step draws another mask
  auto loss = [&] {
    dropout_forward(out.data(), x.data(), n, p, key);
    return dot(out, r, n);
  };
  auto dx = start_buffer(n);
  dropout_backward(dx.data(), r.data(), n, p, key);
  expect_grad("dropout dinp", x, dx, loss);
}

TEST(TrainGradOps, CrossEntropyWithIgnoredTargets) {
  const int64_t n = 6, v = 7;
  const std::vector<int32_t> targets = {3, -1, 0, 6, -1, 2};
  auto logits = random_doubles(n * v, 50, 2.0);
  std::vector<double> probs(n * v);
  int64_t scored = 0;
  auto loss = [&] {
    return cross_entropy_forward(probs.data(), logits.data(), targets.data(), n, v, &scored);
  };
  const double l0 = loss();
  EXPECT_EQ(scored, 4);
  // Mean of -log p over the 4 scored rows, computed independently.
  double expected = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] < 0) continue;
    double mx = -1e300, sum = 0.0;
    for (int64_t j = 0; j < v; ++j) mx = std::max(mx, logits[i * v + j]);
    for (int64_t j = 0; j < v; ++j) sum += std::exp(logits[i * v + j] - mx);
    expected += -(logits[i * v + targets[i]] - mx - std::log(sum));
  }
  EXPECT_NEAR(l0, expected / 4, 1e-12);
  auto dlogits = start_buffer(logits.size());
  cross_entropy_backward(dlogits.data(), probs.data(), targets.data(), n, v, scored, 1.0);
  expect_grad("cross-entropy dlogits", logits, dlogits, loss);
}

}  // namespace
}  // namespace mla::train
