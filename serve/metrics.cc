#include "metrics.h"

#include <cstdio>

namespace mla::serve {
namespace {

void append_metric(std::string& out, const std::string& name, const char* type,
                   const std::string& help, const std::string& value) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  out += name + " " + value + "\n";
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

void LatencyHistogram::observe(double seconds) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) ++counts_[i];
  }
  ++total_;
  sum_ += seconds;
}

void LatencyHistogram::write(std::string& out, const std::string& name,
                             const std::string& help) const {
  std::lock_guard lock(mutex_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  for (size_t i = 0; i < kBounds.size(); ++i) {
    out += name + "_bucket{le=\"" + number(kBounds[i]) + "\"} " + std::to_string(counts_[i]) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(total_) + "\n";
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(total_) + "\n";
}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
}

std::string Metrics::prometheus_text() const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    out +=
        "# HELP mla_requests_total HTTP requests by endpoint and status.\n"
        "# TYPE mla_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
      out += "mla_requests_total{endpoint=\"" + key.first + "\",status=\"" +
             std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
    }
  }
  append_metric(out, "mla_prompt_tokens_total", "counter", "Prompt tokens received.",
                std::to_string(prompt_tokens.load()));
  append_metric(out, "mla_generated_tokens_total", "counter", "Tokens generated.",
                std::to_string(generated_tokens.load()));
  append_metric(out, "mla_prefix_cache_hit_tokens_total", "counter",
                "Prompt tokens whose cache rows came from the prefix cache.",
                std::to_string(prefix_hit_tokens.load()));
  append_metric(out, "mla_steps_total", "counter", "Batched model steps.",
                std::to_string(steps.load()));
  append_metric(out, "mla_queue_depth", "gauge", "Requests waiting for cache pages.",
                std::to_string(queue_depth.load()));
  append_metric(out, "mla_running_requests", "gauge", "Requests in the running batch.",
                std::to_string(running.load()));
  append_metric(out, "mla_batch_size", "gauge", "Sequences in the last model step.",
                std::to_string(batch_size.load()));
  append_metric(out, "mla_cache_pages_used", "gauge", "Cache pages in use.",
                std::to_string(cache_pages_used.load()));
  append_metric(out, "mla_cache_pages_free", "gauge", "Cache pages free.",
                std::to_string(cache_pages_free.load()));
  time_to_first_token.write(out, "mla_time_to_first_token_seconds",
                            "Time from a request's arrival to its first generated token.");
  inter_token_latency.write(out, "mla_inter_token_latency_seconds",
                            "Time between consecutive generated tokens of a request.");
  return out;
}

}  // namespace mla::serve
