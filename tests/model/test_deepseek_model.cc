// The whole model on random weights (tiny-moe-model: sigmoid noaux_tc router with groups, a dense
// first layer, a shared expert): prefill == cached decode, batched variable-length == alone,
// chunked prefill == one pass, forward_last == the last rows, errors before any write.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/model.h"
#include "model/model_parts.h"
#include "test_util.h"

namespace mla {
namespace {

DeepseekModel tiny_model(int64_t prefill_chunk = 256, int64_t cache_tokens = 256,
                         std::optional<DType> cache_dtype = std::nullopt) {
  DeepseekModel::Options o;
  o.weight_dtype = DType::kF32;
  o.cache_dtype = cache_dtype;
  o.page_size = 4;
  o.prefill_chunk = prefill_chunk;
  o.cache_tokens = cache_tokens;
  return DeepseekModel::random(model_preset("tiny-moe-model", 0), 7, o);
}

std::vector<int32_t> tokens(int64_t n, int32_t salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 37 + salt * 11 + 5) % 256);
  return t;
}

std::vector<float> prefill(DeepseekModel& m, const std::vector<int32_t>& t) {
  const auto seq = m.add_sequence();
  const int64_t n = static_cast<int64_t>(t.size());
  std::vector<float> logits(static_cast<size_t>(n * m.config().vocab_size));
  m.forward(t, std::span(&seq, 1), std::span(&n, 1), logits);
  return logits;
}

TEST(DeepseekModel, CachedDecodeEqualsPrefill) {
  DeepseekModel m = tiny_model();
  const auto t = tokens(9, 1);
  const std::vector<float> all = prefill(m, t);
  const int64_t v = m.config().vocab_size;
  const auto seq = m.add_sequence();
  std::vector<float> step(static_cast<size_t>(v)), stepped;
  const int64_t one = 1;
  for (int32_t id : t) {
    m.forward(std::span(&id, 1), std::span(&seq, 1), std::span(&one, 1), step);
    stepped.insert(stepped.end(), step.begin(), step.end());
  }
  EXPECT_LE(test::rel_error(stepped, all), 1e-5);
  EXPECT_EQ(m.length(seq), 9);
}

// The quantized latent caches (DeepSeek-V3.2's row layout) in the whole model: a token's rows are
// R codes, R/128 float32 scales and Dr bf16 numbers in every layer; decode still equals prefill
// (both read the rows back from the pool), and the logits move off the float32 cache's.
TEST(DeepseekModel, QuantizedLatentCaches) {
  DeepseekModel f32 = tiny_model();
  EXPECT_EQ(f32.cache_dtype(), DType::kF32);
  const MlaConfig& a = f32.config().attention;
  const int64_t layers = f32.config().num_layers, r = a.kv_lora_rank, dr = a.qk_rope_head_dim;
  EXPECT_EQ(f32.cache_bytes_per_token(), layers * (r + dr) * 4);
  const auto t = tokens(12, 4);
  const std::vector<float> reference = prefill(f32, t);
  double errors[2] = {0, 0};
  int i = 0;
  for (DType d : {DType::kF8E4M3, DType::kI8}) {
    DeepseekModel m = tiny_model(256, 256, d);
    EXPECT_EQ(m.cache_dtype(), d);
    EXPECT_EQ(m.cache_bytes_per_token(), layers * (r + 4 * ((r + 127) / 128) + 2 * dr));
    const std::vector<float> all = prefill(m, t);
    const auto seq = m.add_sequence();
    const int64_t v = m.config().vocab_size, one = 1;
    std::vector<float> step(static_cast<size_t>(v)), stepped;
    for (int32_t id : t) {
      m.forward(std::span(&id, 1), std::span(&seq, 1), std::span(&one, 1), step);
      stepped.insert(stepped.end(), step.begin(), step.end());
    }
    EXPECT_LE(test::rel_error(stepped, all), 1e-5) << dtype_name(d);
    errors[i++] = test::rel_error(all, reference);
  }
  // The official model with the same rounded rows is the exact check
  // (tests/reference/test_deepseek_model.py); here: the rows really were rounded. (No order
  // between fp8 and int8: this random MoE turns small differences into flipped routes.)
  EXPECT_GT(errors[0], 1e-4);
  EXPECT_GT(errors[1], 1e-4);
  try {
    tiny_model(256, 256, DType::kF16);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "model: cache dtype F16 is not supported (use F32, BF16, F8_E4M3 or I8)");
  }
}

TEST(DeepseekModel, BatchedVariableLengthEqualsAlone) {
  DeepseekModel m = tiny_model();
  const auto a = tokens(5, 2), b = tokens(3, 3);
  const std::vector<float> ra = prefill(m, a), rb = prefill(m, b);
  const auto sa = m.add_sequence(), sb = m.add_sequence();
  std::vector<int32_t> packed = a;
  packed.insert(packed.end(), b.begin(), b.end());
  const std::vector<DeepseekModel::SeqId> seqs = {sa, sb};
  const std::vector<int64_t> counts = {5, 3};
  const int64_t v = m.config().vocab_size;
  std::vector<float> both(static_cast<size_t>(8 * v));
  m.forward(packed, seqs, counts, both);
  EXPECT_LE(test::rel_error(std::vector<float>(both.begin(), both.begin() + 5 * v), ra), 1e-5);
  EXPECT_LE(test::rel_error(std::vector<float>(both.begin() + 5 * v, both.end()), rb), 1e-5);
  // One decode step of both, against the last rows of longer prefills alone.
  std::vector<int32_t> next = {7, 9};
  std::vector<float> last(static_cast<size_t>(2 * v));
  m.forward_last(next, seqs, std::vector<int64_t>{1, 1}, last);
  auto a6 = a, b4 = b;
  a6.push_back(7);
  b4.push_back(9);
  const std::vector<float> ra6 = prefill(m, a6), rb4 = prefill(m, b4);
  EXPECT_LE(test::rel_error(std::vector<float>(last.begin(), last.begin() + v),
                            std::vector<float>(ra6.end() - v, ra6.end())),
            1e-5);
  EXPECT_LE(test::rel_error(std::vector<float>(last.begin() + v, last.end()),
                            std::vector<float>(rb4.end() - v, rb4.end())),
            1e-5);
}

TEST(DeepseekModel, ChunkedPrefillEqualsOnePass) {
  DeepseekModel whole = tiny_model(), chunked = tiny_model(3);
  const auto t = tokens(11, 4);
  EXPECT_LE(test::rel_error(prefill(chunked, t), prefill(whole, t)), 1e-5);
}

TEST(DeepseekModel, BadStepsThrowBeforeWriting) {
  DeepseekModel m = tiny_model(256, 8);
  const auto seq = m.add_sequence();
  const int64_t v = m.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(2 * v));
  const int64_t two = 2;
  const std::vector<int32_t> bad = {3, 256};
  try {
    m.forward(bad, std::span(&seq, 1), std::span(&two, 1), logits);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "forward: token 1 is 256, outside the vocabulary [0, 256)");
  }
  EXPECT_EQ(m.length(seq), 0);
  const auto big = tokens(200, 5);
  const int64_t n = 200;
  std::vector<float> out(static_cast<size_t>(n * v));
  EXPECT_THROW(m.forward(big, std::span(&seq, 1), std::span(&n, 1), out), Error);
  EXPECT_EQ(m.length(seq), 0);
}

// int8 products (few rows: streamed kernel; many rows: dequantized blocks and sgemm) against the
// float32 product of the dequantized weights; quantization error against the original bounded.
TEST(DeepseekModel, Int8ProductsEqualTheDequantizedProduct) {
  detail::Matrix w = detail::random_matrix(300, 70, DType::kF32, 3);
  const std::vector<float> original = w.f32;
  w.quantize_int8();
  ASSERT_TRUE(w.is_int8());
  EXPECT_EQ(w.bytes(), 300 * 70 + 300 * 4);
  detail::Matrix deq;
  deq.out = 300;
  deq.in = 70;
  deq.f32.resize(300 * 70);
  for (int64_t o = 0; o < 300; ++o) w.copy_row(o, deq.f32.data() + o * 70);
  EXPECT_LE(test::rel_error(deq.f32, original), 1.0 / 254 + 1e-6);  // half a step of max/127
  for (int64_t rows : {1, 3, 8, 20}) {
    const auto x = test::random_normal(static_cast<size_t>(rows * 70), rows);
    std::vector<float> y(static_cast<size_t>(rows * 300)), want(y.size());
    w.apply(x.data(), rows, y.data());
    deq.apply(x.data(), rows, want.data());
    EXPECT_LE(test::rel_error(y, want), 1e-5) << rows << " rows";
  }
}

// FP8 e4m3 weights kept as stored, with 128x128 block scales (a 300 x 200 matrix spans 3 x 2
// blocks, the last ones partial): products equal the dequantized float32 product.
TEST(DeepseekModel, Fp8ProductsEqualTheDequantizedProduct) {
  const int64_t out = 300, in = 200;
  std::vector<uint8_t> codes(static_cast<size_t>(out * in));
  for (size_t i = 0; i < codes.size(); ++i) {
    codes[i] = static_cast<uint8_t>((i * 97 + 13) % 0x7f) | static_cast<uint8_t>((i % 2) << 7);
  }
  detail::Matrix w;
  w.out = out;
  w.in = in;
  w.fp8 = codes.data();
  w.block_cols = 2;
  w.block_scale = {0.01f, 0.02f, 0.005f, 0.03f, 0.015f, 0.001f};
  detail::Matrix deq;
  deq.out = out;
  deq.in = in;
  deq.f32.resize(static_cast<size_t>(out * in));
  for (int64_t o = 0; o < out; ++o) w.copy_row(o, deq.f32.data() + o * in);
  // Element (250, 150) is in block (1, 1): its code times 0.03.
  EXPECT_FLOAT_EQ(deq.f32[250 * in + 150], fp8_e4m3_to_f32(codes[250 * in + 150]) * 0.03f);
  for (int64_t rows : {1, 5, 8, 19}) {
    const auto x = test::random_normal(static_cast<size_t>(rows * in), rows);
    std::vector<float> y(static_cast<size_t>(rows * out)), want(y.size());
    w.apply(x.data(), rows, y.data());
    deq.apply(x.data(), rows, want.data());
    EXPECT_LE(test::rel_error(y, want), 1e-5) << rows << " rows";
  }
  EXPECT_EQ(w.bytes(), out * in + 6 * 4);
}

}  // namespace
}  // namespace mla
