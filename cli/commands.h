// Sub-commands of the `mla` program. Each registers its options on the CLI11 app and returns the
// function that runs it. Errors are thrown as mla::Error; main() prints them as one line, exit 2.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace mla::cli {

using Runner = std::function<int()>;

Runner add_attention_command(CLI::App& app);
Runner add_info_command(CLI::App& app);
Runner add_demo_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_train_command(CLI::App& app);
Runner add_generate_command(CLI::App& app);
Runner add_forward_command(CLI::App& app);
Runner add_tokenize_command(CLI::App& app);
Runner add_detokenize_command(CLI::App& app);
Runner add_serve_command(CLI::App& app);
Runner add_perplexity_command(CLI::App& app);

}  // namespace mla::cli
