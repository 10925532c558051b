// mla demo: the embedded default job. Builds a DeepSeek-shaped layer with random weights, runs
// prefill and token-by-token cached decode through both the naive and the absorbed path, and
// prints how closely they agree, how long they took and how large their caches are.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "mla/error.h"
#include "mla/layer.h"
#include "threads.h"

namespace mla::cli {
namespace {

struct DemoOptions {
  std::string preset = "deepseek-v2-lite";
  int64_t prompt = 128;
  int64_t decode = 32;
  int64_t batch = 1;
  uint64_t seed = 1;
};

double max_abs_diff_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

struct PathRun {
  std::vector<float> y_full;    // one-shot prefill of prompt + decode tokens
  std::vector<float> y_cached;  // prefill of the prompt, then one token at a time
  double prefill_seconds = 0.0;
  double decode_seconds_per_token = 0.0;
  int64_t cache_bytes_per_token = 0;
};

template <typename Cache>
PathRun run_path(MlaLayer& layer, const std::vector<float>& x, const DemoOptions& opt) {
  const int64_t d = layer.config().hidden_size, total = opt.prompt + opt.decode;
  PathRun run;
  run.y_full.resize(x.size());
  run.y_cached.resize(x.size());
  {
    Cache cache(layer.config(), opt.batch, total);
    layer.forward(x, opt.batch, total, cache, run.y_full);
    run.cache_bytes_per_token = cache.bytes_per_token();
  }
  Cache cache(layer.config(), opt.batch, total);
  std::vector<float> xp(static_cast<size_t>(opt.batch * opt.prompt * d)), yp(xp.size());
  for (int64_t b = 0; b < opt.batch; ++b) {
    std::copy_n(x.begin() + b * total * d, opt.prompt * d, xp.begin() + b * opt.prompt * d);
  }
  auto t0 = std::chrono::steady_clock::now();
  layer.forward(xp, opt.batch, opt.prompt, cache, yp);
  auto t1 = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < opt.batch; ++b) {
    std::copy_n(yp.begin() + b * opt.prompt * d, opt.prompt * d,
                run.y_cached.begin() + b * total * d);
  }
  std::vector<float> xt(static_cast<size_t>(opt.batch * d)), yt(xt.size());
  for (int64_t t = opt.prompt; t < total; ++t) {
    for (int64_t b = 0; b < opt.batch; ++b)
      std::copy_n(x.begin() + (b * total + t) * d, d, xt.begin() + b * d);
    layer.forward(xt, opt.batch, 1, cache, yt);
    for (int64_t b = 0; b < opt.batch; ++b)
      std::copy_n(yt.begin() + b * d, d, run.y_cached.begin() + (b * total + t) * d);
  }
  auto t2 = std::chrono::steady_clock::now();
  run.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  run.decode_seconds_per_token = opt.decode > 0 ? std::chrono::duration<double>(t2 - t1).count() /
                                                      static_cast<double>(opt.decode)
                                                : 0.0;
  return run;
}

int run_demo(const DemoOptions& opt) {
  if (opt.prompt < 1) throw Error("--prompt: must be at least 1");
  if (opt.decode < 0) throw Error("--decode: must not be negative");
  if (opt.batch < 1) throw Error("--batch: must be at least 1");
  const MlaConfig config = preset_config(opt.preset);
  const int64_t d = config.hidden_size, total = opt.prompt + opt.decode;
  std::printf(
      "mla demo: preset %s (hidden %lld, heads %lld, q_lora_rank %s, kv_lora_rank %lld, "
      "rope %lld, nope %lld, v %lld)\n",
      opt.preset.c_str(), static_cast<long long>(d), static_cast<long long>(config.num_heads),
      config.has_q_lora() ? std::to_string(config.q_lora_rank).c_str() : "null",
      static_cast<long long>(config.kv_lora_rank), static_cast<long long>(config.qk_rope_head_dim),
      static_cast<long long>(config.qk_nope_head_dim), static_cast<long long>(config.v_head_dim));
  std::printf(
      "random weights (seed %llu), batch %lld, prompt %lld tokens, then %lld decoded one at a "
      "time\n",
      static_cast<unsigned long long>(opt.seed), static_cast<long long>(opt.batch),
      static_cast<long long>(opt.prompt), static_cast<long long>(opt.decode));
  std::fflush(stdout);
  MlaLayer layer(config, MlaWeights::random(config, opt.seed));
  std::vector<float> x(static_cast<size_t>(opt.batch * total * d));
  std::mt19937_64 rng(opt.seed + 1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);

  std::printf("running the absorbed path (latent cache)...\n");
  std::fflush(stdout);
  PathRun absorbed = run_path<LatentCache>(layer, x, opt);
  std::printf("running the naive path (per-head K/V cache)...\n");
  std::fflush(stdout);
  PathRun naive = run_path<NaiveKvCache>(layer, x, opt);

  std::printf("\nagreement (max |difference| / max |reference|):\n");
  std::printf("  naive vs absorbed, one-shot prefill:          %.2e\n",
              max_abs_diff_rel(absorbed.y_full, naive.y_full));
  std::printf("  absorbed: prefill+decode vs one-shot prefill: %.2e\n",
              max_abs_diff_rel(absorbed.y_cached, absorbed.y_full));
  std::printf("  naive:    prefill+decode vs one-shot prefill: %.2e\n",
              max_abs_diff_rel(naive.y_cached, naive.y_full));
  std::printf("\n%-10s %16s %18s %20s %18s\n", "path", "cache B/tok f32", "cache B/tok bf16",
              "prefill tokens/s", "decode ms/token");
  for (const auto& [name, run] :
       {std::pair<const char*, const PathRun&>{"absorbed", absorbed}, {"naive", naive}}) {
    std::printf("%-10s %16lld %18lld %20.1f %18.3f\n", name,
                static_cast<long long>(run.cache_bytes_per_token),
                static_cast<long long>(run.cache_bytes_per_token / 2),
                static_cast<double>(opt.batch * opt.prompt) / run.prefill_seconds,
                run.decode_seconds_per_token * 1e3);
  }
  std::printf("\nthe latent cache is %.1fx smaller than the per-head K/V cache\n",
              static_cast<double>(naive.cache_bytes_per_token) /
                  static_cast<double>(absorbed.cache_bytes_per_token));
  return 0;
}

}  // namespace

Runner add_demo_command(CLI::App& app) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run a DeepSeek-shaped layer on random weights: naive vs absorbed");
  add_threads_option(cmd);
  cmd->add_option("--preset", opt->preset,
                  "deepseek-v2-lite (default), deepseek-v2, deepseek-v3 or tiny");
  cmd->add_option("--prompt", opt->prompt, "Prompt tokens prefilled at once (default 128)");
  cmd->add_option("--decode", opt->decode, "Tokens decoded one at a time afterwards (default 32)");
  cmd->add_option("--batch", opt->batch, "Sequences (default 1)");
  cmd->add_option("--seed", opt->seed, "Random seed (default 1)");
  return [opt] { return run_demo(*opt); };
}

}  // namespace mla::cli
