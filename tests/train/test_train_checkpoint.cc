// Training checkpoints: a round trip restores every piece of state, a resumed run continues bit
// for bit like an uninterrupted one (parameters, AdamW moments, losses, validation), and bad
// files are rejected with one message naming the file and the problem.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/train_tasks.h"
#include "mla/error.h"
#include "mla/safetensors.h"
#include "mla/train.h"
#include "mla/train_checkpoint.h"

namespace mla {
namespace {

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("mla_ckpt_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

LmConfig small_config(AttentionKind kind, double dropout) {
  LmShape s;
  s.attention = kind;
  s.d_model = 32;
  s.num_layers = 2;
  s.heads = 4;
  s.q_lora_rank = kind == AttentionKind::kMla ? 16 : 0;
  s.max_seq_len = 16;
  s.dropout = dropout;
  return lm_config_from_shape(s);
}

TrainOptions small_options(int64_t steps) {
  TrainOptions o;
  o.steps = steps;
  o.batch = 4;
  o.seq = 16;
  o.eval_every = 5;
  o.eval_batches = 2;
  o.seed = 42;
  return o;
}

std::vector<float> tensor_of(const std::string& path, const std::string& name) {
  return SafetensorsFile::open(path).read_f32(name);
}

// Dropout on, so the dropout masks must also continue exactly.
TEST(TrainCheckpoint, ResumeIsBitIdenticalToAnUninterruptedRun) {
  for (AttentionKind kind : {AttentionKind::kMla, AttentionKind::kGqa}) {
    TempDir dir;
    const int64_t half = 7, total = 14;
    Trainer full(small_config(kind, 0.1), small_options(total), cli::train_data);
    std::vector<double> full_losses;
    for (int64_t i = 0; i < total; ++i) {
      full_losses.push_back(full.step().loss);
      if (full.steps_done() % 5 == 0) full.evaluate();
      if (full.steps_done() == half) full.save(checkpoint_file_name(dir.str(), half));
    }
    full.save(dir.file("full.safetensors"));

    Trainer resumed =
        Trainer::resume(dir.str(), 0, "", cli::train_data);  // the folder: picks step_00000007
    ASSERT_EQ(resumed.steps_done(), half);
    for (int64_t i = half; i < total; ++i) {
      EXPECT_EQ(resumed.step().loss, full_losses[static_cast<size_t>(i)]) << "step " << i + 1;
      if (resumed.steps_done() % 5 == 0) resumed.evaluate();
    }
    resumed.save(dir.file("resumed.safetensors"));

    const SafetensorsFile a = SafetensorsFile::open(dir.file("full.safetensors"));
    const SafetensorsFile b = SafetensorsFile::open(dir.file("resumed.safetensors"));
    ASSERT_EQ(a.names(), b.names());
    for (const std::string& name : a.names()) {
      const auto x = a.bytes(name), y = b.bytes(name);
      ASSERT_EQ(x.size(), y.size());
      EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0)
          << attention_kind_name(kind) << ": " << name;
    }
    EXPECT_EQ(a.metadata(), b.metadata());  // step, generator state, loss and validation history
  }
}

TEST(TrainCheckpoint, ResumeAcrossThreadCountsIsIdenticalToo) {
  // Every reduction in the training code runs in a fixed order, so the thread count does not
  // change a single bit (oneDNN's sgemm included, for these shapes).
  TempDir dir;
  Trainer a(small_config(AttentionKind::kMla, 0.0), small_options(6), cli::train_data);
  for (int i = 0; i < 6; ++i) a.step();
  a.save(dir.file("a.safetensors"));
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  Trainer b(small_config(AttentionKind::kMla, 0.0), small_options(6), cli::train_data);
  for (int i = 0; i < 6; ++i) b.step();
  omp_set_num_threads(threads);
  b.save(dir.file("b.safetensors"));
  const std::string name = "model.layers.0.self_attn.kv_b_proj.weight";
  const std::vector<float> x = tensor_of(dir.file("a.safetensors"), name),
                           y = tensor_of(dir.file("b.safetensors"), name);
  double diff = 0.0;
  for (size_t i = 0; i < x.size(); ++i)
    diff = std::max(diff, static_cast<double>(std::fabs(x[i] - y[i])));
  std::printf("[ckpt] 6 steps with %d threads vs 1 thread: max |difference| %.3g\n", threads, diff);
  EXPECT_LT(diff, 1e-6);  // not required bit-exact across thread counts; resume uses the same count
}

TEST(TrainCheckpoint, GenerationModelLoadsFromTheCheckpoint) {
  TempDir dir;
  Trainer t(small_config(AttentionKind::kMla, 0.0), small_options(3), cli::train_data);
  t.step();
  t.save(dir.file("c.safetensors"));
  const LmModel m = load_model_checkpoint(dir.file("c.safetensors"));
  ASSERT_EQ(m.num_parameters(), t.model().num_parameters());
  for (int64_t i = 0; i < m.num_parameters(); ++i) ASSERT_EQ(m.params()[i], t.model().params()[i]);
}

// Writes a copy of `good` with one change made through the writer.
template <typename Edit>
std::string edited(const TempDir& dir, const std::string& good, const std::string& name,
                   Edit edit) {
  const SafetensorsFile f = SafetensorsFile::open(good);
  SafetensorsWriter w;
  std::map<std::string, std::string> meta = f.metadata();
  std::vector<std::pair<std::string, std::vector<float>>> tensors;
  for (const std::string& n : f.names()) tensors.emplace_back(n, f.read_f32(n));
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const std::string& n : f.names()) shapes[n] = f.info(n).shape;
  edit(meta, tensors, shapes);
  for (auto& [n, v] : tensors) w.add(n, shapes[n], v);
  for (const auto& [k, v] : meta) w.set_metadata(k, v);
  const std::string path = dir.file(name);
  w.write(path);
  return path;
}

void expect_error(const std::function<void()>& f, const std::string& expected) {
  try {
    f();
    ADD_FAILURE() << "no error; expected: " << expected;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
  }
}

TEST(TrainCheckpoint, BadCheckpointsAreRejectedWithAMessage) {
  TempDir dir;
  Trainer t(small_config(AttentionKind::kMla, 0.0), small_options(3), cli::train_data);
  t.step();
  const std::string good = dir.file("good.safetensors");
  t.save(good);
  using Meta = std::map<std::string, std::string>;
  using Tensors = std::vector<std::pair<std::string, std::vector<float>>>;
  using Shapes = std::map<std::string, std::vector<int64_t>>;

  expect_error([&] { load_model_checkpoint(dir.file("missing.safetensors")); },
               "no such checkpoint file or folder");
  {
    std::ofstream(dir.file("trunc.safetensors"), std::ios::binary) << std::string("\x10\0\0\0", 4);
    expect_error([&] { load_model_checkpoint(dir.file("trunc.safetensors")); },
                 "trunc.safetensors");
  }
  TempDir empty;
  expect_error([&] { load_model_checkpoint(empty.str()); },
               "no step_*.safetensors checkpoint in the folder");
  const std::string foreign = edited(dir, good, "foreign.safetensors",
                                     [](Meta& m, Tensors&, Shapes&) { m.erase("format"); });
  expect_error([&] { load_model_checkpoint(foreign); },
               "foreign.safetensors: not an mla.cpp training checkpoint");
  const std::string version = edited(dir, good, "v9.safetensors",
                                     [](Meta& m, Tensors&, Shapes&) { m["format_version"] = "9"; });
  expect_error([&] { load_model_checkpoint(version); },
               "v9.safetensors: checkpoint format version '9' is not supported");
  const std::string config = edited(dir, good, "cfg.safetensors", [](Meta& m, Tensors&, Shapes&) {
    m["config"] = "{\"d_model\": -3}";
  });
  expect_error([&] { load_model_checkpoint(config); }, "cfg.safetensors: config");
  const std::string missing =
      edited(dir, good, "miss.safetensors", [](Meta&, Tensors& ts, Shapes&) {
        std::erase_if(ts, [](const auto& p) { return p.first == "model.norm.weight"; });
      });
  expect_error([&] { load_model_checkpoint(missing); },
               "miss.safetensors: missing tensor 'model.norm.weight'");
  const std::string nan = edited(dir, good, "nan.safetensors", [](Meta&, Tensors& ts, Shapes&) {
    for (auto& [n, v] : ts) {
      if (n == "model.embed_tokens.weight") v[3] = std::nanf("");
    }
  });
  expect_error([&] { load_model_checkpoint(nan); },
               "nan.safetensors: tensor 'model.embed_tokens.weight' holds NaN");
  const std::string shape = edited(dir, good, "shape.safetensors", [](Meta&, Tensors&, Shapes& s) {
    s["model.norm.weight"] = {2, 16};
  });
  expect_error([&] { load_model_checkpoint(shape); },
               "tensor 'model.norm.weight': expected shape [32], got [2, 16]");
  const std::string step =
      edited(dir, good, "step.safetensors", [](Meta& m, Tensors&, Shapes&) { m["step"] = "x1"; });
  expect_error([&] { Trainer::resume(step, 0, "", cli::train_data); },
               "step.safetensors: metadata 'step' is not a non-negative integer");
  const std::string past =
      edited(dir, good, "past.safetensors", [](Meta& m, Tensors&, Shapes&) { m["step"] = "99"; });
  expect_error([&] { Trainer::resume(past, 0, "", cli::train_data); },
               "past.safetensors: the checkpoint is at step 99, past the requested 3");
  const std::string rng = edited(dir, good, "rng.safetensors",
                                 [](Meta& m, Tensors&, Shapes&) { m["data_rng"] = "1 2"; });
  expect_error([&] { Trainer::resume(rng, 0, "", cli::train_data); },
               "rng.safetensors: metadata 'data_rng' is not a generator state");
  const std::string data = edited(dir, good, "data.safetensors",
                                  [](Meta& m, Tensors&, Shapes&) { m["data_fingerprint"] = "7"; });
  expect_error([&] { Trainer::resume(data, 0, "", cli::train_data); },
               "data.safetensors: the data differs from the data the checkpoint");
}

}  // namespace
}  // namespace mla
