// Server metrics in the Prometheus text format: counters, gauges and latency histograms.
// Every member is thread-safe (the scheduler thread writes, HTTP threads read and count).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace mla::serve {

// A cumulative histogram with fixed bucket bounds (seconds).
class LatencyHistogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  2.5,   10.0};
  void observe(double seconds);
  void write(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mutex_;
  std::array<uint64_t, kBounds.size()> counts_{};
  uint64_t total_ = 0;
  double sum_ = 0;
};

struct Metrics {
  // Requests by endpoint and HTTP status ("/v1/completions", 200).
  void count_request(const std::string& endpoint, int status);

  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> generated_tokens{0};
  std::atomic<uint64_t> prefix_hit_tokens{0};  // prompt tokens served from the prefix cache
  std::atomic<uint64_t> steps{0};
  std::atomic<int64_t> queue_depth{0};
  std::atomic<int64_t> running{0};
  std::atomic<int64_t> batch_size{0};  // sequences in the last step
  std::atomic<int64_t> cache_pages_used{0};
  std::atomic<int64_t> cache_pages_free{0};
  LatencyHistogram time_to_first_token;
  LatencyHistogram inter_token_latency;

  std::string prometheus_text() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

}  // namespace mla::serve
