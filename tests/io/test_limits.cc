// Inputs at and past the limits, each with a clear error (the exact message is asserted) or a
// defined result: safetensors headers longer than the file, element and byte counts that
// overflow 64 bits, absurd shapes, zero-length sequences, batch 0, NaN and infinity in inputs
// and weights, and caches and page pools at capacity.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/kv_cache.h"
#include "mla/layer.h"
#include "mla/safetensors.h"
#include "mla/weights.h"
#include "test_util.h"

namespace mla {
namespace {
namespace fs = std::filesystem;

using test::error_of;

class Limits : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mla_limits_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A safetensors file: 8-byte length (header_len, or the real one), header, then data bytes.
  std::string file(const std::string& header, size_t data_bytes,
                   uint64_t header_len = std::numeric_limits<uint64_t>::max()) {
    const std::string p = (dir_ / "t.safetensors").string();
    if (header_len == std::numeric_limits<uint64_t>::max()) header_len = header.size();
    std::ofstream f(p, std::ios::binary);
    for (int i = 0; i < 8; ++i) f.put(static_cast<char>((header_len >> (8 * i)) & 0xff));
    f << header << std::string(data_bytes, '\0');
    return p;
  }
  std::string open_error(const std::string& path) {
    return error_of([&] { SafetensorsFile::open(path); });
  }

  fs::path dir_;
};

TEST_F(Limits, HeaderLengthBeyondTheFile) {
  const std::string p = file("{}", 0, 100);
  EXPECT_EQ(open_error(p), p + ": header length 100 is past the end of the file (10 bytes)");
  // The largest 64-bit length must not wrap around in the bounds check.
  const std::string q = file("{}", 0, std::numeric_limits<uint64_t>::max() - 1);
  EXPECT_EQ(open_error(q), q + ": header length 18446744073709551614 is past the end of the file "
                               "(10 bytes)");
}

TEST_F(Limits, ElementAndByteCountsOverflowing64Bits) {
  const std::string elems =
      file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})", 0);
  EXPECT_EQ(open_error(elems),
            elems + ": tensor 'w': element count of shape [4294967296,4294967296,16] overflows");
  // 2^62 elements fit in 64 bits; their 2^64 bytes do not.
  const std::string bytes =
      file(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0);
  EXPECT_EQ(open_error(bytes),
            bytes + ": tensor 'w': byte count of shape [4611686018427387904] overflows");
}

TEST_F(Limits, AbsurdShapes) {
  const std::string negative =
      file(R"({"w":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,0]}})", 0);
  EXPECT_EQ(open_error(negative),
            negative + ": tensor 'w': shape [-1,4] has a negative or absurd dimension");
  const std::string huge =
      file(R"({"w":{"dtype":"BF16","shape":[9223372036854775807],"data_offsets":[0,0]}})", 0);
  EXPECT_EQ(open_error(huge),
            huge + ": tensor 'w': shape [9223372036854775807] has a negative or absurd dimension");
  // A plausible shape whose bytes are not in the file.
  const std::string missing =
      file(R"({"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,8]}})", 8);
  EXPECT_EQ(open_error(missing).rfind(missing + ": tensor 'w': data_offsets span 8", 0), 0u)
      << open_error(missing);
}

MlaConfig tiny() {
  return preset_config("tiny");
}

TEST(LayerLimits, BatchZeroAndZeroLengthSequences) {
  const MlaConfig c = tiny();
  MlaLayer layer(c, MlaWeights::random(c, 1));
  std::vector<float> none;
  EXPECT_EQ(error_of([&] { layer.prefill(none, 0, 4, none, AttentionPath::kAbsorbed); }),
            "forward: batch must be at least 1, got 0");
  EXPECT_EQ(error_of([&] { layer.prefill(none, 1, 0, none, AttentionPath::kNaive); }),
            "forward: sequence length must be at least 1, got 0");
  EXPECT_EQ(error_of([&] { LatentCache(c, 0, 16); }), "cache: batch must be at least 1, got 0");
  EXPECT_EQ(error_of([&] { LatentCache(c, 1, 0); }), "cache: capacity must be at least 1, got 0");

  PagedKvPool pool(layer.paged_token_width(AttentionPath::kAbsorbed), 4, 8);
  const PagedKvPool::SeqId seq[] = {pool.add_sequence()};
  const int64_t zero[] = {0};
  EXPECT_EQ(error_of([&] { layer.forward(none, seq, zero, pool, AttentionPath::kAbsorbed, none); }),
            "forward: every sequence needs at least 1 new token, got 0");
  EXPECT_EQ(error_of([&] {
              layer.forward(none, std::span<const PagedKvPool::SeqId>(), std::span<const int64_t>(),
                            pool, AttentionPath::kAbsorbed, none);
            }),
            "forward: batch must be at least 1, got 0");
  EXPECT_EQ(pool.pages_free(), 8);
  EXPECT_EQ(pool.length(seq[0]), 0);
}

TEST(LayerLimits, AbsurdSizesAreRefusedBeforeAllocating) {
  const MlaConfig c = tiny();
  MlaLayer layer(c, MlaWeights::random(c, 1));
  std::vector<float> none;
  EXPECT_EQ(
      error_of([&] { layer.prefill(none, 1, int64_t{1} << 40, none, AttentionPath::kAbsorbed); }),
      "forward: batch x seq x hidden is too large");
  EXPECT_EQ(error_of([&] { LatentCache(c, 1, int64_t{1} << 40); }),
            "cache: batch x capacity x width is too large (1 x 1099511627776 x 40)");
  EXPECT_EQ(error_of([&] { PagedKvPool(40, 16, int64_t{1} << 31); }),
            "cache: the pool needs between 1 and 2^31-1 pages, got 2147483648");
}

TEST(LayerLimits, CachesAtCapacityRefuseWithoutWriting) {
  const MlaConfig c = tiny();
  MlaLayer layer(c, MlaWeights::random(c, 2));
  const int64_t d = c.hidden_size;
  const auto x = test::random_normal(8 * d, 3);
  std::vector<float> y(8 * d);

  LatentCache cache(c, 1, 8);
  layer.forward(x, 1, 8, cache, y);
  std::vector<float> one(d, 0.5f), out(d, 7.0f);
  EXPECT_EQ(error_of([&] { layer.forward(one, 1, 1, cache, out); }),
            "cache: appending 1 tokens to 8 cached would exceed capacity 8");
  EXPECT_EQ(cache.length(), 8);
  EXPECT_EQ(out, std::vector<float>(d, 7.0f));

  // Two pages of 4 tokens: full after 8 tokens; the next step fails and changes nothing.
  PagedKvPool pool(layer.paged_token_width(AttentionPath::kAbsorbed), 4, 2);
  const PagedKvPool::SeqId seq[] = {pool.add_sequence()};
  const int64_t eight[] = {8}, single[] = {1};
  layer.forward(x, seq, eight, pool, AttentionPath::kAbsorbed, y);
  EXPECT_EQ(error_of([&] { layer.forward(one, seq, single, pool, AttentionPath::kAbsorbed, out); }),
            "cache: out of pages: need 1 more, 0 free of 2 (page size 4)");
  EXPECT_EQ(pool.length(seq[0]), 8);
  EXPECT_EQ(pool.pages_free(), 0);
  EXPECT_EQ(out, std::vector<float>(d, 7.0f));
  // Freeing the sequence makes room again.
  pool.remove_sequence(seq[0]);
  const PagedKvPool::SeqId next[] = {pool.add_sequence()};
  layer.forward(one, next, single, pool, AttentionPath::kAbsorbed, out);
  EXPECT_EQ(pool.length(next[0]), 1);
}

TEST_F(Limits, NonFiniteWeightsAreRefused) {
  const MlaConfig c = tiny();
  MlaWeights w = MlaWeights::random(c, 4);
  w.wkv_a[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(error_of([&] { MlaLayer(c, w); }),
            "weights: kv_a_proj_with_mqa.weight: value 5 is NaN or infinity");
  w.wkv_a[5] = 0.0f;
  w.wo[7] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(error_of([&] { MlaLayer(c, w); }),
            "weights: o_proj.weight: value 7 is NaN or infinity");

  // From a file: the error names the file and the tensor.
  SafetensorsWriter writer;
  w.for_each_tensor(
      c, [&](const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& data) {
        writer.add(layer_prefix(0) + name, shape, data);
      });
  const std::string p = (dir_ / "model.safetensors").string();
  writer.write(p);
  EXPECT_EQ(error_of([&] { load_layer_weights(CheckpointDir::open(dir_.string()), c, 0); }),
            p + ": tensor 'model.layers.0.self_attn.o_proj.weight': value 7 is NaN or infinity");
}

bool finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

// NaN or infinity in the input of token t (documented in docs/reliability.md): outputs of
// earlier tokens are unaffected, t's and later ones are not finite, other sequences of the
// batch are bit-identical.
TEST(LayerLimits, NonFiniteInputReachesOnlyTokensThatAttendToIt) {
  const MlaConfig c = tiny();
  MlaLayer layer(c, MlaWeights::random(c, 5));
  const int64_t d = c.hidden_size, seq = 40, bad = 17;
  const auto x = test::random_normal(2 * seq * d, 6);
  for (AttentionPath path : {AttentionPath::kAbsorbed, AttentionPath::kNaive}) {
    std::vector<float> clean(x.size());
    layer.prefill(x, 2, seq, clean, path);
    for (float poison :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      auto xp = x;
      xp[bad * d + 3] = poison;  // sequence 0, token `bad`
      std::vector<float> y(x.size());
      layer.prefill(xp, 2, seq, y, path);
      const std::string what =
          std::string(path == AttentionPath::kAbsorbed ? "absorbed" : "naive") +
          (std::isnan(poison) ? " NaN" : " inf");
      const std::vector<float> before(y.begin(), y.begin() + bad * d),
          want(clean.begin(), clean.begin() + bad * d);
      EXPECT_TRUE(finite(before.data(), bad * d)) << what;
      EXPECT_LT(test::rel_error(before, want), 1e-6) << what;
      for (int64_t t = bad; t < seq; ++t)
        EXPECT_FALSE(finite(y.data() + t * d, d)) << what << ", token " << t;
      EXPECT_EQ(std::memcmp(y.data() + seq * d, clean.data() + seq * d, seq * d * sizeof(float)), 0)
          << what << ": the other sequence changed";
    }
  }
}

}  // namespace
}  // namespace mla
