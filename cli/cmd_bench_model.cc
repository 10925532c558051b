// The whole-model bench (cli/bench_model.h). Decode steps are timed one by one and the median
// reported; the memory floor of a batch-1 step is (active weight bytes + cache bytes read) over
// the read bandwidth measured in the same run.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "bench_model.h"
#include "mla/atomic_file.h"
#include "mla/error.h"
#include "mla/model.h"
#include "model_dir.h"
#include "perf/ceilings.h"

namespace mla::cli {
namespace {

// Peak resident set: anonymous memory plus the mapped checkpoint pages touched (file-backed
// pages of a bf16 checkpoint are page cache the kernel can drop, not private memory).
int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// Private (anonymous) resident memory now, from /proc/self/status (0 where there is none):
// what the model holds beyond the page cache of its mapped checkpoint.
int64_t anonymous_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoll(line.substr(8)) * 1024;
  }
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<int64_t> parse_batches(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 1 || v > 256) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw Error("--batches: '" + item + "' is not a batch size between 1 and 256");
    }
  }
  if (out.empty()) throw Error("--batches: give at least one batch size");
  return out;
}

std::vector<int32_t> some_tokens(int64_t n, int64_t vocab, int64_t salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 7919 + salt * 104729) % vocab);
  return t;
}

}  // namespace

bool is_model_bench(const std::string& preset, const std::string& model) {
  const std::string suffix = "-model";
  if (model.empty()) {
    return preset.size() > suffix.size() &&
           preset.compare(preset.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  std::ifstream in(std::filesystem::path(model) / "config.json", std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  return is_whole_model_config_json(text.str());
}

int run_model_bench(const ModelBenchOptions& opt) {
  DeepseekModel::Options mo;
  if (opt.weight_dtype == "f32") {
    mo.weight_dtype = DType::kF32;
  } else if (opt.weight_dtype == "bf16" || opt.weight_dtype == "int8") {
    mo.weight_dtype = DType::kBF16;
    mo.int8 = opt.weight_dtype == "int8";
  } else {
    throw Error("--weight-dtype: whole models take f32, bf16 or int8, got '" + opt.weight_dtype +
                "'");
  }
  set_cache_dtype(opt.cache_dtype, mo);
  if (opt.context < 1 || opt.context > 65536) throw Error("--context: must be between 1 and 65536");
  if (opt.layers < 0 || opt.layers > 4096) throw Error("--layers: must be between 0 and 4096");
  if (opt.layers > 0 && !opt.model.empty())
    throw Error("--layers: applies to --preset (random weights), not to --model");
  const std::vector<int64_t> batches = parse_batches(opt.batches);
  const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
  mo.cache_tokens = std::max(opt.prefill_tokens, max_batch * (opt.context + opt.repeats + 2)) +
                    max_batch * mo.page_size;
  if (opt.prefill_chunk > 0) mo.prefill_chunk = opt.prefill_chunk;
  const auto load_start = std::chrono::steady_clock::now();
  DeepseekModel model = opt.model.empty()
                            ? DeepseekModel::random(model_preset(opt.preset, opt.layers), 1, mo)
                            : DeepseekModel::load(opt.model, mo);
  const double load_seconds = seconds_since(load_start);
  const DeepseekConfig& c = model.config();
  const int64_t vocab = c.vocab_size;
  const int threads = omp_get_max_threads();
  std::fprintf(
      stderr, "mla bench: whole model %s, %lld layers, %s weights, %d threads (load %.1f s)\n",
      opt.model.empty() ? opt.preset.c_str() : opt.model.c_str(),
      static_cast<long long>(c.num_layers), opt.weight_dtype.c_str(), threads, load_seconds);

  // Prefill: one sequence of prefill_tokens, logits of its last token only.
  std::vector<float> last(static_cast<size_t>(max_batch * vocab));
  double prefill_seconds = 0.0;
  {
    const auto seq = model.add_sequence();
    const auto tokens = some_tokens(opt.prefill_tokens, vocab, 1);
    const int64_t n = opt.prefill_tokens;
    const auto start = std::chrono::steady_clock::now();
    model.forward_last(tokens, std::span(&seq, 1), std::span(&n, 1),
                       std::span(last.data(), static_cast<size_t>(vocab)));
    prefill_seconds = seconds_since(start);
    model.remove_sequence(seq);
  }
  const double prefill_tps = static_cast<double>(opt.prefill_tokens) / prefill_seconds;

  nlohmann::json decode = nlohmann::json::array();
  double batch1_seconds = 0.0;
  for (int64_t b : batches) {
    std::vector<DeepseekModel::SeqId> seqs;
    for (int64_t i = 0; i < b; ++i) seqs.push_back(model.add_sequence());
    const auto prompt = some_tokens(b * opt.context, vocab, 2);
    model.forward_last(prompt, seqs, std::vector<int64_t>(static_cast<size_t>(b), opt.context),
                       std::span(last.data(), static_cast<size_t>(b * vocab)));
    const std::vector<int64_t> ones(static_cast<size_t>(b), 1);
    std::vector<double> steps;
    for (int r = 0; r <= opt.repeats; ++r) {  // the first step warms up and is not counted
      const auto next = some_tokens(b, vocab, 3 + r);
      const auto start = std::chrono::steady_clock::now();
      model.forward_last(next, seqs, ones, std::span(last.data(), static_cast<size_t>(b * vocab)));
      if (r > 0) steps.push_back(seconds_since(start));
    }
    std::sort(steps.begin(), steps.end());
    const double median = steps[steps.size() / 2];
    if (b == 1) batch1_seconds = median;
    decode.push_back({{"batch", b},
                      {"step_seconds", median},
                      {"tokens_per_second", static_cast<double>(b) / median}});
    for (auto s : seqs) model.remove_sequence(s);
  }

  // Memory floor of a batch-1 step: every active weight byte once (attention, dense MLP or the
  // shared and k routed experts, the router, the head) plus the cached rows of every layer.
  const ModelCounts counts = count_model(c);
  const int64_t weight_size = mo.weight_dtype == DType::kF32 ? 4 : 2;
  int64_t active_bytes = counts.active_parameters * weight_size;
  if (mo.int8) {  // all but attention (and the small router and norms) at one byte per weight
    const int64_t attention = counts.attention_parameters_per_layer * c.num_layers;
    active_bytes = attention * weight_size + (counts.active_parameters - attention);
  }
  const int64_t cache_bytes = model.cache_bytes_per_token() * (opt.context + 1);
  const double bandwidth = perf::read_bandwidth_gbs();
  const double floor_seconds = static_cast<double>(active_bytes + cache_bytes) / (bandwidth * 1e9);

  std::printf(
      "whole-model bench: %s, %lld layers (%lld MoE), %s weights, %s cache (%lld bytes a token), "
      "%d threads\n",
      opt.model.empty() ? opt.preset.c_str() : opt.model.c_str(),
      static_cast<long long>(c.num_layers), static_cast<long long>(counts.moe_layers),
      opt.weight_dtype.c_str(), std::string(dtype_name(model.cache_dtype())).c_str(),
      static_cast<long long>(model.cache_bytes_per_token()), threads);
  // Prefill work: 2 FLOPs per active weight per token (the head only for the last token, the
  // quadratic attention left out: small at these lengths), against the measured peak.
  const double prefill_gflops =
      2.0 * static_cast<double>(counts.active_parameters - c.vocab_size * c.attention.hidden_size) *
      prefill_tps / 1e9;
  const double peak = mo.weight_dtype == DType::kF32 ? perf::f32_peak_gflops(threads)
                                                     : perf::bf16_peak_gflops(threads);
  std::printf(
      "  prefill %lld tokens: %.1f tokens/s (%.3f s), %.1f GFLOP/s = %.0f%% of the %s peak "
      "(%.0f GFLOP/s)\n",
      static_cast<long long>(opt.prefill_tokens), prefill_tps, prefill_seconds, prefill_gflops,
      100.0 * prefill_gflops / peak, mo.weight_dtype == DType::kF32 ? "f32" : "bf16", peak);
  for (const auto& d : decode) {
    std::printf("  decode batch %lld at context %lld: %.2f tokens/s (%.2f ms per step)\n",
                static_cast<long long>(d["batch"].get<int64_t>()),
                static_cast<long long>(opt.context), d["tokens_per_second"].get<double>(),
                1e3 * d["step_seconds"].get<double>());
  }
  std::printf(
      "  memory floor of a batch-1 step: %.2f ms (%.1f MB active weights + %.1f KB cache at "
      "%.1f GB/s)",
      1e3 * floor_seconds, active_bytes / 1e6, cache_bytes / 1e3, bandwidth);
  if (batch1_seconds > 0) std::printf("; measured / floor = %.2fx", batch1_seconds / floor_seconds);
  std::printf(
      "\n  weights %.1f MB, peak resident %.1f MB (private now %.1f MB; the rest is the "
      "mapped checkpoint's page cache)\n",
      model.weight_bytes() / 1e6, peak_rss_bytes() / 1e6, anonymous_rss_bytes() / 1e6);

  if (!opt.json.empty()) {
    nlohmann::json j;
    j["model"] = opt.model.empty() ? opt.preset : opt.model;
    j["layers"] = c.num_layers;
    j["moe_layers"] = counts.moe_layers;
    j["weight_dtype"] = opt.weight_dtype;
    j["cache_dtype"] = std::string(dtype_name(model.cache_dtype()));
    j["cache_bytes_per_token"] = model.cache_bytes_per_token();
    j["threads"] = threads;
    j["load_seconds"] = load_seconds;
    j["weight_bytes"] = model.weight_bytes();
    j["peak_rss_bytes"] = peak_rss_bytes();
    j["private_rss_bytes"] = anonymous_rss_bytes();
    j["prefill"] = {{"tokens", opt.prefill_tokens},
                    {"seconds", prefill_seconds},
                    {"tokens_per_second", prefill_tps},
                    {"gflops", prefill_gflops},
                    {"peak_gflops", peak}};
    j["decode_context"] = opt.context;
    j["decode"] = decode;
    j["memory_floor"] = {{"active_weight_bytes", active_bytes},
                         {"cache_bytes", cache_bytes},
                         {"bandwidth_gbs", bandwidth},
                         {"seconds", floor_seconds}};
    write_file_atomic(opt.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace mla::cli
