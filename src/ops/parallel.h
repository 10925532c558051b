// When a kernel splits its work across threads. A fork-join region costs a few microseconds on
// an idle machine but a whole scheduler time slice (milliseconds) when a thread of the team has
// been descheduled by another process: on a loaded 2-core machine a tiny decode step ran 1000x
// slower with 2 threads than with 1 (docs/performance.md). So every kernel forks only when its
// work is at least kParallelGrain multiply-adds (~20-50 us on one core), where a second thread
// can save more than a descheduled one can cost; smaller work runs on the calling thread.
#pragma once

#include <omp.h>

#include <cstdint>

namespace mla::ops {

inline constexpr double kParallelGrain = 1 << 20;

// Whether `multiply_adds` of work is worth a parallel region now.
inline bool worth_parallel(double multiply_adds) {
  return multiply_adds >= kParallelGrain && omp_get_max_threads() > 1 && !omp_in_parallel();
}

// Holds OpenMP (and oneDNN, which asks OpenMP) to one thread for a scope, for library calls that
// would otherwise fork for small work. Restores the caller's thread count.
class SerialScope {
 public:
  explicit SerialScope(bool serial) : saved_(serial ? omp_get_max_threads() : 0) {
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~SerialScope() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int saved_;
};

}  // namespace mla::ops
