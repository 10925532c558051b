#include "threads.h"

#include <omp.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace mla::cli {

void use_passive_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr)
    return;  // the user's choice (and the second run, which has it set)
  if (::setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  ::unsetenv("OMP_WAIT_POLICY");  // exec failed: run on with what libgomp already read
}

void add_threads_option(CLI::App* cmd) {
  cmd->add_option_function<int>(
      "--threads",
      [](const int& n) {
        if (n < 1) throw CLI::ValidationError("--threads", "must be at least 1");
        omp_set_num_threads(n);
      },
      "Threads (default: all cores, or OMP_NUM_THREADS)");
}

}  // namespace mla::cli
