// One page pool, several threads: each thread decodes its own sequences (prefill then one token
// at a time, with its own layer) while another thread adds, fills and removes sequences, so
// pages are taken and freed concurrently. Every output must equal, bit for bit, the same
// sequence decoded alone on one thread. Run under TSan by scripts/run_tests.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "mla/layer.h"
#include "test_util.h"

namespace mla {
namespace {

using Seq = PagedKvPool::SeqId;

constexpr int kThreads = 4;
constexpr int kSeqsPerThread = 3;
constexpr int64_t kDecodeSteps = 12;
constexpr int64_t kPageSize = 4;  // small pages: many page allocations per sequence

MlaConfig small_config() {
  MlaConfig c = preset_config("tiny");
  c.num_heads = 3;
  c.v_head_dim = 24;
  return c;
}

int64_t prompt_length(int s) {
  return 3 + (s * 5) % 11;
}

// Prefill of the sequence's prompt, then kDecodeSteps single-token steps; returns every output.
std::vector<float> decode(MlaLayer& layer, PagedKvPool& pool, AttentionPath path,
                          const std::vector<float>& x) {
  const int64_t d = layer.config().hidden_size;
  const auto total = static_cast<int64_t>(x.size()) / d;
  const int64_t prompt = total - kDecodeSteps;
  std::vector<float> y(x.size());
  const Seq ids[] = {pool.add_sequence()};
  for (int64_t t = 0; t < total;) {
    const int64_t n[] = {t == 0 ? prompt : 1};
    layer.forward(std::span<const float>(x.data() + t * d, n[0] * d), ids, n, pool, path,
                  std::span<float>(y.data() + t * d, n[0] * d));
    t += n[0];
  }
  pool.remove_sequence(ids[0]);
  return y;
}

// Adds sequences, writes a page of NaN into each and removes them again, until `stop`: its
// pages are recycled into the decoding sequences, so a missed lock would show as NaN there.
void churn(PagedKvPool& pool, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    const Seq ids[] = {pool.add_sequence()};
    const int64_t n[] = {kPageSize};
    pool.reserve(ids, n);
    for (int64_t t = 0; t < kPageSize; ++t) {
      auto* row = static_cast<float*>(pool.writable_row(ids[0], t));
      for (int64_t i = 0; i < pool.token_width(); ++i) row[i] = NAN;
    }
    pool.commit(ids[0], kPageSize);
    pool.remove_sequence(ids[0]);
    std::this_thread::yield();
  }
}

class PagedConcurrency : public ::testing::TestWithParam<AttentionPath> {};

TEST_P(PagedConcurrency, ThreadsDecodingDifferentSequencesMatchSerialRuns) {
  const AttentionPath path = GetParam();
  const MlaConfig c = small_config();
  const MlaWeights weights = MlaWeights::random(c, 11);
  const int64_t d = c.hidden_size;
  constexpr int kSeqs = kThreads * kSeqsPerThread;
  std::vector<std::vector<float>> inputs;
  for (int s = 0; s < kSeqs; ++s)
    inputs.push_back(test::random_normal((prompt_length(s) + kDecodeSteps) * d, 100 + s));

  std::vector<std::vector<float>> serial;
  {
    MlaLayer layer(c, weights);
    PagedKvPool pool(layer.paged_token_width(path), kPageSize, 64);
    for (int s = 0; s < kSeqs; ++s) serial.push_back(decode(layer, pool, path, inputs[s]));
  }

  // Room for every sequence at its full length at once, plus the churn thread's page.
  const int64_t pages = kSeqs * ((14 + kDecodeSteps + kPageSize - 1) / kPageSize) + 4;
  PagedKvPool pool(MlaLayer(c, weights).paged_token_width(path), kPageSize, pages);
  std::vector<std::vector<float>> parallel(kSeqs);
  std::atomic<bool> stop{false};
  std::thread churner(churn, std::ref(pool), std::cref(stop));
  std::vector<std::thread> workers;
  for (int w = 0; w < kThreads; ++w) {
    workers.emplace_back([&, w] {
      MlaLayer layer(c, weights);  // a layer's workspace belongs to one thread
      for (int s = w; s < kSeqs; s += kThreads) parallel[s] = decode(layer, pool, path, inputs[s]);
    });
  }
  for (std::thread& t : workers) t.join();
  stop = true;
  churner.join();

  for (int s = 0; s < kSeqs; ++s) {
    ASSERT_EQ(parallel[s].size(), serial[s].size());
    EXPECT_EQ(std::memcmp(parallel[s].data(), serial[s].data(), serial[s].size() * sizeof(float)),
              0)
        << "sequence " << s << ": rel error " << test::rel_error(parallel[s], serial[s]);
  }
  EXPECT_EQ(pool.pages_free(), pages);
  EXPECT_TRUE(pool.sequences().empty());
}

INSTANTIATE_TEST_SUITE_P(Paths, PagedConcurrency,
                         ::testing::Values(AttentionPath::kAbsorbed, AttentionPath::kNaive),
                         [](const auto& param_info) {
                           return param_info.param == AttentionPath::kAbsorbed ? "absorbed"
                                                                               : "naive";
                         });

}  // namespace
}  // namespace mla
