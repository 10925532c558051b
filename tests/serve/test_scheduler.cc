// The continuous-batching scheduler against RecallModel: concurrent == alone, prefix cache on ==
// off, admission by free pages, the bounded queue, cancellation freeing pages, finish reasons.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "recall_model.h"
#include "scheduler.h"

namespace mla::serve {
namespace {

using testing::next_token_of;
using testing::RecallModel;

struct Outcome {
  std::vector<int32_t> tokens;
  FinishReason reason = FinishReason::kError;
  int64_t generated = 0;
  std::string error;
};

// Greedy continuation computed without any cache.
std::vector<int32_t> expected(std::vector<int32_t> all, int64_t n, int64_t vocab,
                              int32_t eos = -1) {
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = next_token_of(all, vocab);
    if (t == eos) break;
    out.push_back(t);
    all.push_back(t);
  }
  return out;
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

struct Submitted {
  std::shared_ptr<RequestHandle> handle;
  std::shared_ptr<std::promise<Outcome>> done;
  std::shared_ptr<Outcome> outcome;
};

Submitted submit(Scheduler& s, std::vector<int32_t> prompt, int64_t max_tokens,
                 std::vector<int32_t> eos = {}, int64_t stop_after = -1) {
  Submitted r;
  r.done = std::make_shared<std::promise<Outcome>>();
  r.outcome = std::make_shared<Outcome>();
  GenerationRequest g;
  g.prompt = std::move(prompt);
  g.max_tokens = max_tokens;
  g.eos = std::move(eos);
  g.sample = [](std::span<const float> logits, std::span<const int32_t>) { return argmax(logits); };
  auto outcome = r.outcome;
  g.on_token = [outcome, stop_after](int32_t t) {
    outcome->tokens.push_back(t);
    return stop_after < 0 || static_cast<int64_t>(outcome->tokens.size()) < stop_after;
  };
  auto done = r.done;
  g.on_finish = [outcome, done](FinishReason reason, int64_t generated, const std::string& e) {
    outcome->reason = reason;
    outcome->generated = generated;
    outcome->error = e;
    done->set_value(*outcome);
  };
  r.handle = s.submit(std::move(g));
  return r;
}

std::vector<int32_t> prompt_of(int seed, int len, int64_t vocab) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>((seed * 31 + i * 7) % vocab));
  return p;
}

TEST(Scheduler, ConcurrentRequestsEqualEachAlone) {
  const int64_t vocab = 97;
  RecallModel model(vocab, 512, 4, 400);
  Metrics metrics;
  Scheduler s(model, {.max_batch = 8, .max_queue = 64, .step_tokens = 24, .prefix_entries = 0},
              metrics);
  std::vector<Submitted> reqs;
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 20; ++i) {
    const auto p = prompt_of(i, 3 + (i * 13) % 40, vocab);  // prompts longer than a step's budget
    const int64_t n = 1 + (i * 5) % 17;
    want.push_back(expected(p, n, vocab));
    reqs.push_back(submit(s, p, n));
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Outcome o = reqs[i].done->get_future().get();
    EXPECT_EQ(o.tokens, want[i]) << "request " << i;
    EXPECT_EQ(o.reason, FinishReason::kLength);
  }
  EXPECT_GT(model.max_batch_seen(), 1);  // they really ran together
  EXPECT_LE(model.max_batch_seen(), 8);
  EXPECT_EQ(model.pages_free(), model.pages_total());  // every page back
  EXPECT_EQ(metrics.generated_tokens.load(), [&] {
    uint64_t n = 0;
    for (const auto& w : want) n += w.size();
    return n;
  }());
}

TEST(Scheduler, PrefixCacheHitsGiveTheSameOutputs) {
  const int64_t vocab = 101;
  RecallModel model(vocab, 512, 4, 200);
  Metrics metrics;
  Scheduler s(model, {.max_batch = 4, .max_queue = 16, .step_tokens = 64, .prefix_entries = 8},
              metrics);
  const auto system = prompt_of(5, 23, vocab);  // a shared prefix ending inside a page
  for (int i = 0; i < 6; ++i) {
    auto p = system;
    const auto tail = prompt_of(100 + i, 1 + i, vocab);
    p.insert(p.end(), tail.begin(), tail.end());
    const Outcome o = submit(s, p, 9).done->get_future().get();
    EXPECT_EQ(o.tokens, expected(p, 9, vocab)) << "request " << i;
  }
  // The same prompt again continues from the cached rows of the first run.
  auto again = system;
  EXPECT_EQ(submit(s, again, 5).done->get_future().get().tokens, expected(again, 5, vocab));
  EXPECT_GE(metrics.prefix_hit_tokens.load(), 5u * 23u);
}

TEST(Scheduler, WaitsForPagesThenRuns) {
  const int64_t vocab = 50;
  RecallModel model(vocab, 64, 4, 12);  // 48 tokens of cache
  Metrics metrics;
  Scheduler s(model, {.max_batch = 4, .max_queue = 8, .step_tokens = 16, .prefix_entries = 0},
              metrics);
  std::vector<Submitted> reqs;
  for (int i = 0; i < 4; ++i) reqs.push_back(submit(s, prompt_of(i, 20, vocab), 16));  // 9 pages
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(reqs[i].done->get_future().get().tokens,
              expected(prompt_of(i, 20, vocab), 16, vocab));
  }
  EXPECT_EQ(model.max_batch_seen(), 1);  // never two at once: they would not fit
}

TEST(Scheduler, FullQueueRefuses) {
  RecallModel model(40, 64, 4, 64);
  Metrics metrics;
  Scheduler s(model, {.max_batch = 1, .max_queue = 1, .step_tokens = 8, .prefix_entries = 0},
              metrics);
  model.close();
  std::vector<Submitted> reqs;
  reqs.push_back(submit(s, {1, 2, 3}, 4));
  reqs.push_back(submit(s, {1, 2, 3}, 4));
  EXPECT_THROW(
      {
        for (int i = 0; i < 3; ++i) reqs.push_back(submit(s, {1, 2, 3}, 4));
      },
      QueueFull);
  model.open();
  for (auto& r : reqs) EXPECT_EQ(r.done->get_future().get().reason, FinishReason::kLength);
}

TEST(Scheduler, CancelFreesTheSequence) {
  RecallModel model(40, 4096, 4, 1100);
  Metrics metrics;
  Scheduler s(model, {.max_batch = 2, .max_queue = 4, .step_tokens = 8, .prefix_entries = 0},
              metrics);
  Submitted r = submit(s, {1, 2, 3}, 4000);
  while (metrics.generated_tokens.load() < 3) std::this_thread::yield();
  r.handle->cancel();
  const Outcome o = r.done->get_future().get();
  EXPECT_EQ(o.reason, FinishReason::kCancelled);
  EXPECT_LT(o.generated, 4000);
  while (model.pages_free() != model.pages_total()) std::this_thread::yield();
}

TEST(Scheduler, EosAndStopEndWithStop) {
  const int64_t vocab = 23;
  RecallModel model(vocab, 256, 4, 64);
  Metrics metrics;
  Scheduler s(model, {}, metrics);
  const std::vector<int32_t> p = {3, 1, 4, 1, 5};
  const auto full = expected(p, 10, vocab);
  const Outcome eos = submit(s, p, 10, {full[3]}).done->get_future().get();
  EXPECT_EQ(eos.reason, FinishReason::kStop);
  EXPECT_EQ(eos.tokens, expected(p, 10, vocab, full[3]));  // eos itself is not reported
  const Outcome stop = submit(s, p, 10, {}, 2).done->get_future().get();
  EXPECT_EQ(stop.reason, FinishReason::kStop);
  EXPECT_EQ(stop.tokens, std::vector<int32_t>(full.begin(), full.begin() + 2));
}

TEST(Scheduler, RefusesBadRequestsByName) {
  RecallModel model(10, 32, 4, 6);
  Metrics metrics;
  Scheduler s(model, {}, metrics);
  auto message = [&](std::vector<int32_t> prompt, int64_t max_tokens) {
    try {
      submit(s, std::move(prompt), max_tokens);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(message({}, 4), "prompt: must not be empty");
  EXPECT_EQ(message({1}, 0), "max_tokens: must be >= 1");
  EXPECT_EQ(message({1, 10}, 4), "prompt: token 10 outside the vocabulary");
  EXPECT_EQ(message({1, 2}, 31),
            "prompt (2 tokens) + max_tokens (31) exceeds the model's context of 32 tokens");
  EXPECT_EQ(message({1, 2}, 22),
            "prompt + max_tokens (24 tokens) does not fit in the cache (24 tokens)");
}

}  // namespace
}  // namespace mla::serve
