// mla generate: continues a prompt with a model trained by `mla train`, decoding through the
// inference caches (MLA: the absorbed latent cache). Prints the prompt and its continuation.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "mla/error.h"
#include "mla/lm_decoder.h"
#include "mla/train_checkpoint.h"
#include "mla/train_data.h"

namespace mla::cli {
namespace {

struct GenerateCli {
  std::string checkpoint, prompt;
  SampleOptions sample;
  bool verbose = false;
};

int run_generate(const GenerateCli& o) {
  if (o.prompt.empty()) throw Error("--prompt: must not be empty");
  const LmModel model = load_model_checkpoint(o.checkpoint);
  const std::vector<int32_t> prompt = encode_bytes(o.prompt);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> out = generate(model, prompt, o.sample);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s%s\n", o.prompt.c_str(), decode_bytes(out).c_str());
  if (o.verbose) {
    const LmConfig& c = model.config();
    std::fprintf(stderr,
                 "%zu tokens in %.3f s (%.1f tokens/s), %s, cache %lld bytes per token (float32, "
                 "all layers)\n",
                 out.size(), seconds, static_cast<double>(out.size()) / std::max(seconds, 1e-9),
                 o.sample.recompute ? "recomputing every step" : "cached",
                 static_cast<long long>(c.num_layers * c.cache_numbers_per_token() * 4));
  }
  return 0;
}

}  // namespace

Runner add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateCli>();
  CLI::App* cmd =
      app.add_subcommand("generate", "Continue a prompt with a model trained by `mla train`");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint file, or a folder (its latest step)")
      ->required();
  cmd->add_option("--prompt", o->prompt, "Text to continue")->required();
  cmd->add_option("--max-tokens", o->sample.max_tokens, "Bytes to generate (default 100)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", o->sample.temperature,
                  "Sampling temperature; 0 = greedy (default 1)")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", o->sample.top_k,
                  "Sample among the k most likely bytes; 0 = all (default 0)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--seed", o->sample.seed, "Sampling seed (default 1)");
  cmd->add_flag("--no-cache", o->sample.recompute,
                "Recompute the whole sequence every step (reference path)");
  cmd->add_flag("--verbose", o->verbose, "Timing and cache size on stderr");
  return [o] { return run_generate(*o); };
}

}  // namespace mla::cli
