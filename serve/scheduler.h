// Continuous batching: one scheduler thread steps every running request together. New
// requests join at the next step, their prompts fed in chunks so a long prompt does not stall
// the others' decoding; finished or cancelled requests leave at once and their pages go to
// the prefix cache (or are freed). A request is admitted only when the cache can hold its
// prompt and max_tokens, counting the pages of every running request's remaining growth, so a
// step never runs out of pages; the others wait in a bounded queue, and beyond it submit()
// refuses them (HTTP 429).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "metrics.h"
#include "prefix_cache.h"
#include "sequence_model.h"

namespace mla::serve {

enum class FinishReason { kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "cancelled", "error"

struct GenerationRequest {
  std::vector<int32_t> prompt;  // non-empty
  int64_t max_tokens = 16;      // >= 1
  std::vector<int32_t> eos;     // tokens that end the generation (not reported as output)
  // Picks the next token from the logits of the last one (vocab entries) and the tokens
  // generated so far. Runs on the scheduler thread.
  std::function<int32_t(std::span<const float> logits, std::span<const int32_t> generated)> sample;
  // Called with each generated token; returning false ends the request with kStop (a stop
  // string was found). Runs on the scheduler thread; must not block.
  std::function<bool(int32_t token)> on_token;
  // Called once at the end with the number of tokens generated (eos included) and the error
  // message for kError.
  std::function<void(FinishReason reason, int64_t generated, const std::string& error)> on_finish;
};

// The submitter's side of a request: cancel it (a client that went away).
class RequestHandle {
 public:
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int64_t max_batch = 16;       // running requests (sequences per step)
  int64_t max_queue = 64;       // waiting requests; beyond: QueueFull
  int64_t step_tokens = 256;    // tokens per step, decode tokens first, then prefill chunks
  int64_t prefix_entries = 32;  // finished sequences kept for prefix reuse (0: off)
};

class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Scheduler {
 public:
  Scheduler(SequenceModel& model, SchedulerOptions options, Metrics& metrics);
  ~Scheduler();  // cancels everything still running or waiting
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates (mla::Error naming the problem) and queues; throws QueueFull when the queue is
  // full. The callbacks are called from the scheduler thread.
  std::shared_ptr<RequestHandle> submit(GenerationRequest request);

  // Pages a request of this many tokens may need in the worst case.
  int64_t pages_for(int64_t tokens) const;
  const SchedulerOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Active {
    GenerationRequest request;
    std::shared_ptr<RequestHandle> handle;
    Clock::time_point arrived, last_token;
    SeqId seq = -1;
    std::vector<int32_t> fed;  // tokens whose cache rows the sequence holds
    std::vector<int32_t> generated;
    int64_t prompt_pos = 0;  // prompt tokens fed so far
    bool done = false;
  };
  void loop();
  bool admit(Active& a);  // false: no room now
  void run_step();
  void finish(Active& a, FinishReason reason, const std::string& error = {});
  int64_t committed_growth() const;  // pages running requests may still take

  SequenceModel& model_;
  SchedulerOptions options_;
  Metrics& metrics_;
  PrefixCache prefix_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Active>> waiting_;   // guarded by mutex_
  bool stopping_ = false;                         // guarded by mutex_
  std::vector<std::unique_ptr<Active>> running_;  // scheduler thread only
  std::vector<float> logits_;
  std::thread thread_;
};

}  // namespace mla::serve
