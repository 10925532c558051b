// Loading and saving one layer's weights: round trips in every dtype, FP8 block dequantisation,
// sharded folders, and error messages that name the tensor and the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "mla/error.h"
#include "mla/safetensors.h"
#include "mla/weights.h"
#include "test_util.h"

namespace mla {
namespace {
namespace fs = std::filesystem;

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mla_weights_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string error_of(const std::function<void()>& f) { return test::error_of(f); }
  fs::path dir_;
  MlaConfig config_ = preset_config("tiny");
};

TEST_F(WeightsTest, RoundTripF32IsExact) {
  MlaWeights w = MlaWeights::random(config_, 5);
  save_layer_weights(path("model.safetensors"), config_, 3, w);
  MlaWeights back = load_layer_weights(CheckpointDir::open(dir_.string()), config_, 3);
  EXPECT_EQ(back.wq_a, w.wq_a);
  EXPECT_EQ(back.wkv_b, w.wkv_b);
  EXPECT_EQ(back.wo, w.wo);
  EXPECT_EQ(back.kv_norm, w.kv_norm);
}

TEST_F(WeightsTest, RoundTripBf16And16BitWithinRounding) {
  MlaWeights w = MlaWeights::random(config_, 6);
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    save_layer_weights(path("model.safetensors"), config_, 0, w, dtype);
    MlaWeights back = load_layer_weights(CheckpointDir::open(dir_.string()), config_, 0);
    const double tol = dtype == DType::kBF16 ? 1.0 / 256 : 1.0 / 2048;
    EXPECT_LT(test::rel_error(back.wkv_b, w.wkv_b), tol);
    EXPECT_GT(test::rel_error(back.wkv_b, w.wkv_b), 0.0);  // really stored in 16 bits
  }
}

TEST_F(WeightsTest, Fp8BlockScalesAreApplied) {
  // An FP8 o_proj [64, 64] with 128x128 blocks -> one scale; values 1.0 (0x38) scaled by 0.5.
  MlaWeights w = MlaWeights::random(config_, 7);
  SafetensorsWriter writer;
  const std::string prefix = layer_prefix(0);
  w.for_each_tensor(config_, [&](const std::string& name, const std::vector<int64_t>& shape,
                                 std::vector<float>& data) {
    if (name == "o_proj.weight") {
      std::vector<std::byte> fp8(data.size(), std::byte{0x38});
      fp8[1] = std::byte{0xb8};  // -1.0
      writer.add_raw(prefix + name, DType::kF8E4M3, shape, fp8);
      writer.add(prefix + "o_proj.weight_scale_inv", {1, 1}, std::vector<float>{0.5f});
    } else {
      writer.add(prefix + name, shape, data);
    }
  });
  writer.write(path("model.safetensors"));
  MlaWeights back = load_layer_weights(CheckpointDir::open(dir_.string()), config_, 0);
  EXPECT_EQ(back.wo[0], 0.5f);
  EXPECT_EQ(back.wo[1], -0.5f);
  EXPECT_EQ(back.wo[4095], 0.5f);
}

TEST_F(WeightsTest, ShardedFolderThroughIndex) {
  MlaWeights w = MlaWeights::random(config_, 8);
  SafetensorsWriter a, b;
  std::ostringstream map;
  const std::string prefix = layer_prefix(1);
  int i = 0;
  w.for_each_tensor(config_, [&](const std::string& name, const std::vector<int64_t>& shape,
                                 std::vector<float>& data) {
    const bool first = (i++ % 2) == 0;
    (first ? a : b).add(prefix + name, shape, data);
    if (i > 1) map << ",";
    map << '"' << prefix << name << "\": \""
        << (first ? "model-00001-of-00002" : "model-00002-of-00002") << ".safetensors\"";
  });
  a.write(path("model-00001-of-00002.safetensors"));
  b.write(path("model-00002-of-00002.safetensors"));
  std::ofstream(path("model.safetensors.index.json"))
      << "{\"metadata\": {}, \"weight_map\": {" << map.str() << "}}";
  MlaWeights back = load_layer_weights(CheckpointDir::open(dir_.string()), config_, 1);
  EXPECT_EQ(back.wq_b, w.wq_b);
  EXPECT_EQ(back.wo, w.wo);
}

TEST_F(WeightsTest, ErrorsNameTensorAndFile) {
  MlaWeights w = MlaWeights::random(config_, 9);
  save_layer_weights(path("model.safetensors"), config_, 0, w);
  CheckpointDir ckpt = CheckpointDir::open(dir_.string());
  EXPECT_EQ(
      error_of([&] { load_layer_weights(ckpt, config_, 2); }),
      dir_.string() + ": no tensors for layer 2 (no name starts with 'model.layers.2.self_attn.')");

  MlaConfig no_q_lora = config_;
  no_q_lora.q_lora_rank = 0;
  EXPECT_EQ(error_of([&] { load_layer_weights(ckpt, no_q_lora, 0); }),
            dir_.string() +
                ": missing tensor 'model.layers.0.self_attn.q_proj.weight' required by the config");

  MlaConfig wider = config_;
  wider.kv_lora_rank = 48;
  EXPECT_EQ(error_of([&] { load_layer_weights(ckpt, wider, 0); }),
            path("model.safetensors") +
                ": tensor 'model.layers.0.self_attn.kv_a_proj_with_mqa.weight': expected shape "
                "[56, 64], got [40, 64]");
}

}  // namespace
}  // namespace mla
