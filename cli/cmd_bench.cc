// mla bench: MLA (absorbed and naive) against MHA, GQA and MQA on the same paged cache, kernels
// and GEMM backend. Per variant and context: cache bytes per token, prefill tokens/s, decode
// latency per step (median of repeats), cache and peak memory. Table, --json, --plot.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_model.h"
#include "bench_variants.h"
#include "cache_dtype.h"
#include "commands.h"
#include "kernel_report.h"
#include "mla/atomic_file.h"
#include "mla/error.h"
#include "mla/quantized_row.h"
#include "model_dir.h"
#include "perf/ceilings.h"
#include "plot.h"

namespace mla::cli {
namespace {

struct BenchOptions {
  std::string preset = "deepseek-v2-lite";
  std::string model;
  std::string contexts = "1024,4096,16384";
  int64_t batch = 1;
  int threads = 0;
  std::string dtype = "f32";
  std::string weight_dtype = "f32";
  std::string variants = "mla,mla-naive,mha,gqa8,mqa";
  std::string json;
  std::string plot;
  int repeats = 7;
  int64_t prefill_tokens = 512;
  int64_t page_size = 64;
  int64_t sparse_top_k = 2048;
  int64_t prefill_chunk = 0;
  // Whole models (bench_model.h) only.
  int64_t layers = 0;
  std::string batches = "1,8";
  int64_t decode_context = 64;
  bool weight_dtype_set = false;
  bool dtype_set = false;
};

struct Point {
  int64_t context = 0;
  double decode_seconds = 0.0;
  double decode_seconds_max = 0.0;  // the slowest timed step (a loaded machine shows here)
  double prefill_tokens_per_second = 0.0;
  double chunk_tokens_per_second = 0.0;  // --prefill-chunk tokens appended at the context
  double decode_gflops = 0.0;            // the whole batch's step, mla-math.md's count
  double prefill_gflops = 0.0;           // the timed prefill of every sequence
  int64_t cache_bytes = 0;
  int64_t peak_rss_bytes = 0;
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) parts.push_back(item);
  }
  return parts;
}

std::vector<int64_t> parse_contexts(const std::string& text) {
  std::vector<int64_t> contexts;
  for (const std::string& item : split(text)) {
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || value < 1 || value > (int64_t{1} << 22)) {
      throw Error("--contexts: '" + item + "' is not a context length between 1 and 4194304");
    }
    contexts.push_back(value);
  }
  if (contexts.empty()) throw Error("--contexts: give at least one length, e.g. 1024,4096");
  std::sort(contexts.begin(), contexts.end());
  return contexts;
}

DType cache_dtype(const BenchOptions& opt) {
  return parse_cache_dtype("--dtype", opt.dtype);
}
// Quantized rows keep the rotary part (Dr numbers) in bf16 (mla/quantized_row.h).
int64_t rope_width(const BenchOptions& opt, const MlaConfig& config) {
  return is_quantized_cache_dtype(cache_dtype(opt)) ? config.qk_rope_head_dim : 0;
}
int64_t row_bytes(const BenchOptions& opt, const MlaConfig& config, int64_t token_width) {
  return PagedKvPool::row_bytes_for(token_width, cache_dtype(opt), rope_width(opt, config));
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Point measure(BenchVariant& v, int64_t context, const BenchOptions& opt, const MlaConfig& config,
              std::mt19937_64& rng) {
  const int64_t batch = opt.batch, d = v.hidden_size;
  const int64_t per_seq = context + opt.repeats + 1 + opt.prefill_chunk;
  const int64_t pages = batch * ((per_seq + opt.page_size - 1) / opt.page_size);
  PagedKvPool pool(v.token_width, opt.page_size, pages, cache_dtype(opt), rope_width(opt, config));
  std::vector<PagedKvPool::SeqId> seqs;
  for (int64_t b = 0; b < batch; ++b) seqs.push_back(pool.add_sequence());
  std::normal_distribution<float> normal(0.0f, 1.0f);

  // Prefill the first tokens for real (timed), then fill the rest of the context with synthetic
  // rows: decode cost does not depend on the cached values, and a 16k prefill per variant
  // would dominate the run.
  Point point;
  point.context = context;
  const int64_t prefill = std::min(context, opt.prefill_tokens);
  std::vector<float> x(static_cast<size_t>(batch * prefill * d)), y(x.size());
  for (float& value : x) value = normal(rng);
  std::vector<int64_t> counts(static_cast<size_t>(batch), prefill);
  {
    // Warm-up on a throwaway pool of the same shape: oneDNN generates its kernels and the layer
    // grows its workspace on first use, which must not count as prefill time.
    PagedKvPool warm(v.token_width, opt.page_size,
                     batch * ((prefill + opt.page_size - 1) / opt.page_size), cache_dtype(opt),
                     rope_width(opt, config));
    std::vector<PagedKvPool::SeqId> warm_seqs;
    for (int64_t b = 0; b < batch; ++b) warm_seqs.push_back(warm.add_sequence());
    v.step(x, warm_seqs, counts, warm, y);
  }
  auto start = std::chrono::steady_clock::now();
  v.step(x, seqs, counts, pool, y);
  const double prefill_seconds = seconds_since(start);
  point.prefill_tokens_per_second = static_cast<double>(batch * prefill) / prefill_seconds;
  point.prefill_gflops = static_cast<double>(batch) * v.flops(0, prefill) / prefill_seconds * 1e-9;
  if (context > prefill) {
    std::vector<int64_t> rest(static_cast<size_t>(batch), context - prefill);
    pool.reserve(seqs, rest);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> synthetic(static_cast<size_t>(v.token_width));
    for (auto seq : seqs) {
      for (int64_t t = prefill; t < context; ++t) {
        for (int64_t i = 0; i < v.token_width; ++i)
          synthetic[static_cast<size_t>(i)] = uniform(rng);
        pool.encode_row(synthetic.data(), pool.writable_row(seq, t));
      }
      pool.commit(seq, context - prefill);
    }
  }

  std::vector<float> xt(static_cast<size_t>(batch * d)), yt(xt.size());
  for (float& value : xt) value = normal(rng);
  std::vector<int64_t> ones(static_cast<size_t>(batch), 1);
  v.step(xt, seqs, ones, pool, yt);  // warm-up: workspaces grow once
  std::vector<double> times;
  for (int r = 0; r < opt.repeats; ++r) {
    start = std::chrono::steady_clock::now();
    v.step(xt, seqs, ones, pool, yt);
    times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  point.decode_seconds = times[times.size() / 2];
  point.decode_seconds_max = times.back();
  if (opt.prefill_chunk > 0) {
    // A prefill chunk at this context (chunked prefill of a long prompt): each of its tokens
    // attends to the whole context before it.
    const auto n = static_cast<size_t>(batch * opt.prefill_chunk * d);
    std::vector<float> xc(n), yc(n);
    for (float& value : xc) value = normal(rng);
    std::vector<int64_t> chunk(static_cast<size_t>(batch), opt.prefill_chunk);
    start = std::chrono::steady_clock::now();
    v.step(xc, seqs, chunk, pool, yc);
    point.chunk_tokens_per_second =
        static_cast<double>(batch * opt.prefill_chunk) / seconds_since(start);
  }
  point.decode_gflops =
      static_cast<double>(batch) * v.flops(context, 1) / point.decode_seconds * 1e-9;
  point.cache_bytes = pool.bytes_used();
  point.peak_rss_bytes = peak_rss_bytes();
  return point;
}

void write_plot(const std::string& path, const std::vector<BenchVariant>& variants,
                const std::vector<std::vector<Point>>& results, const BenchOptions& opt,
                const MlaConfig& config) {
  PlotPanel latency{"decode step latency", "context (tokens)", "ms per step", true, false, {}};
  PlotPanel memory{"kv cache per sequence", "context (tokens)", "MiB", true, true, {}};
  for (size_t i = 0; i < variants.size(); ++i) {
    PlotSeries lat{variants[i].name, {}, {}}, mem{variants[i].name, {}, {}};
    for (const Point& p : results[i]) {
      lat.x.push_back(static_cast<double>(p.context));
      lat.y.push_back(p.decode_seconds * 1e3);
      mem.x.push_back(static_cast<double>(p.context));
      mem.y.push_back(
          static_cast<double>(row_bytes(opt, config, variants[i].token_width) * p.context) /
          (1 << 20));
    }
    latency.series.push_back(lat);
    memory.series.push_back(mem);
  }
  write_line_plot(path, {latency, memory});
}

int run_bench(const BenchOptions& opt) {
  if (is_model_bench(opt.preset, opt.model)) {
    if (opt.threads < 0) throw Error("--threads: must not be negative");
    if (opt.repeats < 1 || opt.repeats > 1000) throw Error("--repeats: must be between 1 and 1000");
    if (opt.prefill_tokens < 1) throw Error("--prefill-tokens: must be at least 1");
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
    ModelBenchOptions m;
    m.preset = opt.preset;
    m.model = opt.model;
    m.weight_dtype = opt.weight_dtype_set ? opt.weight_dtype : "bf16";
    m.cache_dtype = opt.dtype_set ? opt.dtype : "";
    m.json = opt.json;
    m.batches = opt.batches;
    m.layers = opt.layers;
    m.prefill_tokens = opt.prefill_tokens;
    m.context = opt.decode_context;
    m.prefill_chunk = opt.prefill_chunk;
    m.repeats = opt.repeats;
    return run_model_bench(m);
  }
  const DType cache = cache_dtype(opt);  // throws on an unknown value
  if (opt.weight_dtype != "f32" && opt.weight_dtype != "bf16")
    throw Error("--weight-dtype: unknown value '" + opt.weight_dtype + "' (use f32 or bf16)");
  if (opt.batch < 1 || opt.batch > 4096) throw Error("--batch: must be between 1 and 4096");
  if (opt.repeats < 1 || opt.repeats > 1000) throw Error("--repeats: must be between 1 and 1000");
  if (opt.prefill_tokens < 1) throw Error("--prefill-tokens: must be at least 1");
  if (opt.threads < 0) throw Error("--threads: must not be negative");
  if (opt.sparse_top_k < 1 || opt.sparse_top_k >= (int64_t{1} << 31))
    throw Error("--sparse-topk: must be at least 1, got " + std::to_string(opt.sparse_top_k));
  if (opt.prefill_chunk < 0 || opt.prefill_chunk > 65536)
    throw Error("--prefill-chunk: must be between 0 and 65536, got " +
                std::to_string(opt.prefill_chunk));
  if (opt.page_size < 1 || opt.page_size > 256) {
    throw Error("--page-size: page size must be between 1 and 256 tokens, got " +
                std::to_string(opt.page_size));
  }
  const std::vector<int64_t> contexts = parse_contexts(opt.contexts);
  const MlaConfig config =
      opt.model.empty() ? preset_config(opt.preset) : open_model_dir(opt.model).config;
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const int threads = omp_get_max_threads();

  std::vector<BenchVariant> variants;
  for (const std::string& name : split(opt.variants))
    variants.push_back(make_bench_variant(name, config, 1,
                                          opt.weight_dtype == "bf16" ? DType::kBF16 : DType::kF32,
                                          opt.sparse_top_k));
  if (variants.empty()) throw Error("--variants: give at least one variant");
  for (const BenchVariant& v : variants) {
    if (is_quantized_cache_dtype(cache) && v.name != "mla")
      throw Error("--dtype " + opt.dtype + ": only the mla variant (dense absorbed) reads a " +
                  "quantized cache, not " + v.name + " (use --variants mla)");
  }

  std::fprintf(stderr, "mla bench: %s, batch %lld, %d threads, %s cache, contexts %s\n",
               opt.model.empty() ? opt.preset.c_str() : opt.model.c_str(),
               static_cast<long long>(opt.batch), threads, opt.dtype.c_str(), opt.contexts.c_str());
  // The ceiling each point is reported against: the FMA peak for a float32 cache, the bf16 dot
  // peak (VDPBF16PS) for a bf16 cache, measured now with the same threads.
  const double f32_peak = perf::f32_peak_gflops(threads);
  const double bf16_peak = perf::bf16_peak_gflops(threads);
  // fp8/int8 rows are widened to float32 for the FMA units: the f32 peak.
  const double peak = cache == DType::kBF16 && bf16_peak > 0 ? bf16_peak : f32_peak;
  const double bandwidth = perf::read_bandwidth_gbs();
  std::fprintf(stderr, "peaks: f32 FMA %.0f GFLOP/s, bf16 dot %.0f GFLOP/s, read %.1f GB/s\n",
               f32_peak, bf16_peak, bandwidth);
  const auto percent = [peak](double gflops) { return 100.0 * gflops / peak; };
  std::mt19937_64 rng(1);
  std::vector<std::vector<Point>> results(variants.size());
  const size_t total = variants.size() * contexts.size();
  size_t done = 0;
  for (size_t i = 0; i < variants.size(); ++i) {
    for (int64_t context : contexts) {
      std::fprintf(stderr, "[%zu/%zu] %-9s context %6lld ...", ++done, total,
                   variants[i].name.c_str(), static_cast<long long>(context));
      std::fflush(stderr);
      results[i].push_back(measure(variants[i], context, opt, config, rng));
      const Point& p = results[i].back();
      std::fprintf(stderr, " prefill %8.0f tok/s, decode %8.3f ms/step (%.0f GFLOP/s)",
                   p.prefill_tokens_per_second, p.decode_seconds * 1e3, p.decode_gflops);
      if (opt.prefill_chunk > 0)
        std::fprintf(stderr, ", chunk %8.0f tok/s", p.chunk_tokens_per_second);
      std::fprintf(stderr, "\n");
    }
  }

  std::printf("%-10s %14s %9s %16s %16s %12s %8s %12s %12s\n", "variant", "cache B/token",
              "context", "prefill tok/s", "decode ms/step", "decode GF/s", "% peak", "cache MiB",
              "peak RSS MiB");
  for (size_t i = 0; i < variants.size(); ++i) {
    for (const Point& p : results[i]) {
      std::printf(
          "%-10s %14lld %9lld %16.0f %16.3f %12.1f %8.1f %12.1f %12.1f\n", variants[i].name.c_str(),
          static_cast<long long>(row_bytes(opt, config, variants[i].token_width)),
          static_cast<long long>(p.context), p.prefill_tokens_per_second, p.decode_seconds * 1e3,
          p.decode_gflops, percent(p.decode_gflops), static_cast<double>(p.cache_bytes) / (1 << 20),
          static_cast<double>(p.peak_rss_bytes) / (1 << 20));
    }
  }

  // Sparse against dense absorbed MLA at every context both ran (same shape, cache and threads).
  const auto find = [&variants](const std::string& name) {
    for (size_t i = 0; i < variants.size(); ++i)
      if (variants[i].name == name) return static_cast<int64_t>(i);
    return int64_t{-1};
  };
  const int64_t dense_i = find("mla"), sparse_i = find("mla-sparse");
  nlohmann::json speedups = nlohmann::json::array();
  if (dense_i >= 0 && sparse_i >= 0) {
    for (size_t c = 0; c < contexts.size(); ++c) {
      const Point& dp = results[static_cast<size_t>(dense_i)][c];
      const Point& sp = results[static_cast<size_t>(sparse_i)][c];
      nlohmann::json s = {{"context", dp.context},
                          {"top_k", opt.sparse_top_k},
                          {"decode", dp.decode_seconds / sp.decode_seconds}};
      std::printf("mla-sparse (k=%lld) vs mla at context %lld: decode %.2fx",
                  static_cast<long long>(opt.sparse_top_k), static_cast<long long>(dp.context),
                  dp.decode_seconds / sp.decode_seconds);
      if (opt.prefill_chunk > 0) {
        s["prefill_chunk"] = sp.chunk_tokens_per_second / dp.chunk_tokens_per_second;
        std::printf(", prefill chunk of %lld %.2fx", static_cast<long long>(opt.prefill_chunk),
                    sp.chunk_tokens_per_second / dp.chunk_tokens_per_second);
      }
      std::printf("\n");
      speedups.push_back(s);
    }
  }

  if (!opt.json.empty()) {
    nlohmann::json j;
    j["preset"] = opt.model.empty() ? opt.preset : "";
    j["model"] = opt.model;
    j["batch"] = opt.batch;
    j["threads"] = threads;
    j["dtype"] = opt.dtype;
    j["cache_dtype"] = opt.dtype;  // the same, under the name the other commands use
    j["page_size"] = opt.page_size;
    j["repeats"] = opt.repeats;
    j["prefill_tokens"] = opt.prefill_tokens;
    j["peak_gflops"] = {{"f32_fma", f32_peak}, {"bf16_dot", bf16_peak}, {"reference", peak}};
    j["read_bandwidth_gb_per_s"] = bandwidth;
    j["weight_dtype"] = opt.weight_dtype;
    j["sparse_top_k"] = opt.sparse_top_k;
    j["prefill_chunk"] = opt.prefill_chunk;
    j["sparse_speedup"] = speedups;
    j["cpu_kernels"] = cpu_report_json();  // the kernel each family ran, as `mla info --cpu`
    j["variants"] = nlohmann::json::array();
    for (size_t i = 0; i < variants.size(); ++i) {
      nlohmann::json v;
      v["name"] = variants[i].name;
      v["cache_bytes_per_token"] = row_bytes(opt, config, variants[i].token_width);
      v["weight_bytes"] = variants[i].weight_bytes;
      if (variants[i].index_width > 0)
        v["index_bytes_per_token"] = row_bytes(opt, config, variants[i].index_width);
      v["weight_dtype"] = std::string(dtype_name(variants[i].weight_dtype));
      v["points"] = nlohmann::json::array();
      for (const Point& p : results[i]) {
        v["points"].push_back({{"context", p.context},
                               {"batch", opt.batch},
                               {"decode_seconds_per_token", p.decode_seconds},
                               {"decode_seconds_max", p.decode_seconds_max},
                               {"prefill_tokens_per_second", p.prefill_tokens_per_second},
                               {"gflops", p.decode_gflops},
                               {"percent_of_peak", percent(p.decode_gflops)},
                               {"prefill_gflops", p.prefill_gflops},
                               {"prefill_percent_of_peak", percent(p.prefill_gflops)},
                               {"cache_bytes", p.cache_bytes},
                               {"peak_rss_bytes", p.peak_rss_bytes}});
        if (opt.prefill_chunk > 0)
          v["points"].back()["chunk_tokens_per_second"] = p.chunk_tokens_per_second;
      }
      j["variants"].push_back(v);
    }
    write_file_atomic(opt.json, j.dump(2) + "\n");
  }
  if (!opt.plot.empty()) write_plot(opt.plot, variants, results, opt, config);
  return 0;
}

}  // namespace

Runner add_bench_command(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Compare MLA (absorbed, naive) with MHA, GQA and MQA: cache and speed");
  cmd->add_option("--preset", opt->preset,
                  "deepseek-v2-lite (default), deepseek-v2, deepseek-v3, tiny; whole models with "
                  "random weights: deepseek-v2-lite-model, tiny-moe-model");
  cmd->add_option("--model", opt->model,
                  "A model folder whose config.json gives the shape (instead of --preset)");
  cmd->add_option("--contexts", opt->contexts,
                  "Comma-separated context lengths (default 1024,4096,16384)");
  cmd->add_option("--batch", opt->batch, "Sequences decoded together (default 1)");
  cmd->add_option("--threads", opt->threads, "Threads (default: all cores)");
  cmd->add_option("--dtype,--cache-dtype", opt->dtype,
                  "KV cache precision: f32 (default), bf16, fp8 or int8 (fp8/int8: e4m3 or int8 "
                  "latent rows with a float32 scale per 128 numbers, rope in bf16; mla only); "
                  "whole models: the latent cache (default f32 under f32 weights, else bf16)")
      ->each([opt](const std::string&) { opt->dtype_set = true; });
  cmd->add_option("--weight-dtype", opt->weight_dtype,
                  "MLA projection weights: f32 (default) or bf16 (baselines stay f32); whole "
                  "models: bf16 (default) or f32")
      ->each([opt](const std::string&) { opt->weight_dtype_set = true; });
  cmd->add_option("--variants", opt->variants,
                  "Comma-separated: mla,mla-naive,mla-sparse,mha,gqa8,mqa (default "
                  "mla,mla-naive,mha,gqa8,mqa; mla-sparse is DSA, see --sparse-topk)");
  cmd->add_option("--json", opt->json, "Write the results as JSON to this file");
  cmd->add_option("--plot", opt->plot,
                  "Write a PNG plot of latency and cache memory against context");
  cmd->add_option("--repeats", opt->repeats,
                  "Timed decode steps per point; the median is reported (default 7)");
  cmd->add_option("--prefill-tokens", opt->prefill_tokens,
                  "Tokens prefilled for the prefill rate (default 512)");
  cmd->add_option("--page-size", opt->page_size,
                  "Cache page size in tokens, 1 to 256 (default 64)");
  cmd->add_option("--sparse-topk", opt->sparse_top_k,
                  "Keys per query of mla-sparse (DSA with DeepSeek-V3.2's indexer; default 2048)");
  cmd->add_option("--prefill-chunk", opt->prefill_chunk,
                  "Also time a prefill chunk of this many tokens appended at each context "
                  "(default 0: off)");
  cmd->add_option("--layers", opt->layers,
                  "Whole-model presets: decoder layers (default: the preset's)");
  cmd->add_option("--batches", opt->batches,
                  "Whole models: comma-separated decode batch sizes (default 1,8)");
  cmd->add_option("--decode-context", opt->decode_context,
                  "Whole models: tokens cached per sequence before the timed decode steps "
                  "(default 64)");
  return [opt] { return run_bench(*opt); };
}

}  // namespace mla::cli
