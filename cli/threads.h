// Threads and how they wait, for every command.
#pragma once

#include <CLI/CLI.hpp>

namespace mla::cli {

// libgomp's threads spin up to ~300k iterations after each parallel region by default; on a
// shared machine that spinning takes the cores the other threads of the team (or other
// processes) need, and a 2-thread V2-Lite decode step ran 10x slower than with threads that
// sleep (docs/performance.md). libgomp reads OMP_WAIT_POLICY when it loads, before main(), so
// when the user has set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT this sets
// OMP_WAIT_POLICY=passive and runs the program again (execv of /proc/self/exe; on failure it
// carries on with the default). Call first in main().
void use_passive_wait_policy(char** argv);

// --threads N (N >= 1) on a subcommand: omp_set_num_threads(N) before it runs.
void add_threads_option(CLI::App* cmd);

}  // namespace mla::cli
