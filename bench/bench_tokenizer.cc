// Tokenizer speed on one core: MB/s of text encoded, first pass (every word through BPE) and
// later passes (repeated words from the cache), plus load time and the decode speed.
// Usage: bench_tokenizer --model DIR --file TEXT [--passes N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include "mla/error.h"
#include "mla/tokenizer.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU time of this thread: on a shared machine wall time also counts other programs' turns.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, file;
  int passes = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    if (!std::strcmp(argv[i], "--file")) file = argv[i + 1];
    if (!std::strcmp(argv[i], "--passes")) passes = std::atoi(argv[i + 1]);
  }
  if (model.empty() || file.empty() || passes < 1) {
    std::fprintf(stderr, "usage: bench_tokenizer --model DIR --file TEXT [--passes N]\n");
    return 2;
  }
  try {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw mla::Error(file + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    const double mb = static_cast<double>(text.size()) / 1e6;

    auto start = std::chrono::steady_clock::now();
    const mla::Tokenizer tokenizer = mla::Tokenizer::from_dir(model);
    std::printf("load: %.3f s (%d ids)\n", seconds_since(start), tokenizer.vocab_size());

    size_t count = 0;
    double best = 1e30, best_cpu = 1e30;
    for (int p = 0; p < passes; ++p) {
      start = std::chrono::steady_clock::now();
      const double cpu = thread_cpu_seconds();
      const auto ids = tokenizer.encode(text);
      const double t = seconds_since(start), c = thread_cpu_seconds() - cpu;
      count = ids.size();
      if (p == 0) {
        std::printf("encode, first pass: %.2f MB/s wall, %.2f MB/s CPU\n", mb / t, mb / c);
      } else {
        best = std::min(best, t);
        best_cpu = std::min(best_cpu, c);
      }
    }
    if (passes > 1) {
      std::printf("encode, best later pass: %.2f MB/s wall, %.2f MB/s CPU\n", mb / best,
                  mb / best_cpu);
    }
    std::printf("text: %.3f MB, %zu tokens, %.2f bytes/token\n", mb, count,
                static_cast<double>(text.size()) / static_cast<double>(count));

    const auto ids = tokenizer.encode(text);
    start = std::chrono::steady_clock::now();
    const std::string back = tokenizer.decode(ids);
    const double t = seconds_since(start);
    std::printf("decode: %.2f MB/s, round trip %s\n", mb / t, back == text ? "exact" : "DIFFERS");
    return back == text ? 0 : 1;
  } catch (const mla::Error& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 2;
  }
}
