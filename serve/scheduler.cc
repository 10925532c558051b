#include "scheduler.h"

#include <algorithm>
#include <exception>

#include "mla/error.h"

namespace mla::serve {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "error";
}

Scheduler::Scheduler(SequenceModel& model, SchedulerOptions options, Metrics& metrics)
    : model_(model), options_(options), metrics_(metrics), prefix_(model, options.prefix_entries) {
  if (options_.max_batch < 1) throw Error("serve: max_batch must be >= 1");
  if (options_.max_queue < 0) throw Error("serve: max_queue must be >= 0");
  if (options_.step_tokens < options_.max_batch) {
    throw Error(
        "serve: step_tokens must be >= max_batch (every running request decodes a token "
        "per step)");
  }
  metrics_.cache_pages_free = model_.pages_free();
  metrics_.cache_pages_used = model_.pages_total() - model_.pages_free();
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

int64_t Scheduler::pages_for(int64_t tokens) const {
  const int64_t ps = model_.page_size();
  return (tokens + ps - 1) / ps;
}

std::shared_ptr<RequestHandle> Scheduler::submit(GenerationRequest request) {
  if (request.prompt.empty()) throw Error("prompt: must not be empty");
  if (request.max_tokens < 1) throw Error("max_tokens: must be >= 1");
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
  if (total > model_.max_positions()) {
    throw Error("prompt (" + std::to_string(request.prompt.size()) + " tokens) + max_tokens (" +
                std::to_string(request.max_tokens) + ") exceeds the model's context of " +
                std::to_string(model_.max_positions()) + " tokens");
  }
  // One page more than the tokens need: a prefix hit may copy a shared partial page.
  if (pages_for(total) + 1 > model_.pages_total()) {
    throw Error("prompt + max_tokens (" + std::to_string(total) +
                " tokens) does not fit in the cache (" +
                std::to_string(model_.pages_total() * model_.page_size()) + " tokens)");
  }
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= model_.vocab_size()) {
      throw Error("prompt: token " + std::to_string(t) + " outside the vocabulary");
    }
  }
  if (!request.sample || !request.on_token || !request.on_finish) {
    throw Error("serve: request without sample/on_token/on_finish");
  }
  auto a = std::make_unique<Active>();
  a->request = std::move(request);
  a->handle = std::make_shared<RequestHandle>();
  a->arrived = Clock::now();
  auto handle = a->handle;
  {
    std::lock_guard lock(mutex_);
    if (static_cast<int64_t>(waiting_.size()) >= options_.max_queue + options_.max_batch) {
      throw QueueFull("the server is busy: " + std::to_string(waiting_.size()) +
                      " requests are waiting; retry later");
    }
    waiting_.push_back(std::move(a));
    metrics_.queue_depth = static_cast<int64_t>(waiting_.size());
  }
  wake_.notify_all();
  return handle;
}

int64_t Scheduler::committed_growth() const {
  int64_t pages = 0;
  for (const auto& a : running_) {
    const int64_t final_len =
        static_cast<int64_t>(a->request.prompt.size()) + a->request.max_tokens;
    pages += pages_for(final_len) - pages_for(static_cast<int64_t>(a->fed.size()));
  }
  return pages;
}

bool Scheduler::admit(Active& a) {
  const int64_t total = static_cast<int64_t>(a.request.prompt.size()) + a.request.max_tokens;
  PrefixCache::Hit hit = prefix_.lookup(a.request.prompt);
  for (;;) {
    const int64_t shared_full_pages = hit.tokens / model_.page_size();
    const int64_t need = pages_for(total) - shared_full_pages + (hit.tokens > 0 ? 1 : 0);
    if (need <= model_.pages_free() - committed_growth()) break;
    // Evicting may free the pages of the hit's own parent: its fork keeps them alive.
    if (!prefix_.evict_one()) {
      if (hit.seq >= 0) model_.remove_sequence(hit.seq);
      return false;
    }
  }
  a.seq = hit.seq >= 0 ? hit.seq : model_.add_sequence();
  a.fed.assign(a.request.prompt.begin(), a.request.prompt.begin() + hit.tokens);
  a.prompt_pos = hit.tokens;
  metrics_.prefix_hit_tokens += static_cast<uint64_t>(hit.tokens);
  metrics_.prompt_tokens += a.request.prompt.size();
  return true;
}

void Scheduler::finish(Active& a, FinishReason reason, const std::string& error) {
  a.done = true;
  if (a.seq >= 0) {
    prefix_.insert(a.seq, std::move(a.fed));
    a.seq = -1;
  }
  a.request.on_finish(reason, static_cast<int64_t>(a.generated.size()), error);
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !running_.empty(); });
      if (stopping_) break;
      // Admit in arrival order while there is room; a request that does not fit blocks the
      // ones behind it, so a large request is not starved by small ones.
      while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < options_.max_batch) {
        Active& next = *waiting_.front();
        if (next.handle->cancelled()) {
          finish(next, FinishReason::kCancelled);
        } else if (!admit(next)) {
          break;
        } else {
          running_.push_back(std::move(waiting_.front()));
        }
        waiting_.pop_front();
      }
      metrics_.queue_depth = static_cast<int64_t>(waiting_.size());
    }
    metrics_.running = static_cast<int64_t>(running_.size());
    if (!running_.empty()) run_step();
    std::erase_if(running_, [](const auto& a) { return a->done; });
    metrics_.running = static_cast<int64_t>(running_.size());
    metrics_.cache_pages_free = model_.pages_free();
    metrics_.cache_pages_used = model_.pages_total() - model_.pages_free();
  }
  for (auto& a : running_) finish(*a, FinishReason::kCancelled);
  running_.clear();
  for (auto& a : waiting_) finish(*a, FinishReason::kCancelled);
  waiting_.clear();
  prefix_.clear();
}

void Scheduler::run_step() {
  std::vector<Active*> batch;
  std::vector<SeqId> seqs;
  std::vector<std::span<const int32_t>> tokens;
  int64_t budget = options_.step_tokens;
  for (auto& a : running_) {
    if (a->handle->cancelled()) {
      finish(*a, FinishReason::kCancelled);
      continue;
    }
    if (a->prompt_pos == static_cast<int64_t>(a->request.prompt.size())) {  // decoding
      batch.push_back(a.get());
      seqs.push_back(a->seq);
      tokens.emplace_back(&a->generated.back(), 1);
      --budget;
    }
  }
  for (auto& a : running_) {  // prefill chunks share what decoding left
    const int64_t left = static_cast<int64_t>(a->request.prompt.size()) - a->prompt_pos;
    if (a->done || left == 0 || budget <= 0) continue;
    const int64_t n = std::min(left, budget);
    batch.push_back(a.get());
    seqs.push_back(a->seq);
    tokens.emplace_back(a->request.prompt.data() + a->prompt_pos, static_cast<size_t>(n));
    budget -= n;
  }
  if (batch.empty()) return;
  const int64_t vocab = model_.vocab_size();
  logits_.resize(batch.size() * static_cast<size_t>(vocab));
  try {
    model_.step(seqs, tokens, logits_);
  } catch (const std::exception& e) {
    for (Active* a : batch) finish(*a, FinishReason::kError, e.what());
    return;
  }
  metrics_.steps++;
  metrics_.batch_size = static_cast<int64_t>(batch.size());
  const auto now = Clock::now();
  for (size_t i = 0; i < batch.size(); ++i) {
    Active& a = *batch[i];
    a.fed.insert(a.fed.end(), tokens[i].begin(), tokens[i].end());
    if (a.prompt_pos < static_cast<int64_t>(a.request.prompt.size())) {
      a.prompt_pos += static_cast<int64_t>(tokens[i].size());
      if (a.prompt_pos < static_cast<int64_t>(a.request.prompt.size())) continue;  // mid-prompt
    }
    const std::span<const float> row(logits_.data() + i * static_cast<size_t>(vocab),
                                     static_cast<size_t>(vocab));
    int32_t next = 0;
    try {
      next = a.request.sample(row, a.generated);
    } catch (const std::exception& e) {
      finish(a, FinishReason::kError, e.what());
      continue;
    }
    if (a.generated.empty()) {
      metrics_.time_to_first_token.observe(std::chrono::duration<double>(now - a.arrived).count());
    } else {
      metrics_.inter_token_latency.observe(
          std::chrono::duration<double>(now - a.last_token).count());
    }
    a.last_token = now;
    a.generated.push_back(next);
    metrics_.generated_tokens++;
    if (std::find(a.request.eos.begin(), a.request.eos.end(), next) != a.request.eos.end()) {
      finish(a, FinishReason::kStop);
    } else if (!a.request.on_token(next)) {
      finish(a, FinishReason::kStop);
    } else if (static_cast<int64_t>(a.generated.size()) >= a.request.max_tokens) {
      finish(a, FinishReason::kLength);
    }
  }
}

}  // namespace mla::serve
