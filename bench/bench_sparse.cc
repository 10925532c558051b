// bench_sparse: the attention alone, dense absorbed (the fused latent kernel) against DSA
// (the lightning indexer choosing top-k, then sparse attention over the chosen latent rows), at
// DeepSeek shapes with random data, for one decoded token and for a prefill chunk appended at
// each context. Times are medians of repeats; the indexer and the sparse attention are also
// reported apart, so the attention's own speed-up (cost in k, not context) is visible. The
// indexer's projections (wq_b, wk, weights_proj: a 50 MB f32 read for V3.2's shape) are timed on
// their own and left out of the speed-up: they are per-token projections like q_b, and a decode
// step streams them whatever the context.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mla/atomic_file.h"
#include "mla/dsa.h"
#include "mla/error.h"
#include "ops/latent_attention.h"
#include "ops/sparse_attention.h"

namespace mla::bench {
namespace {

struct Options {
  std::string preset = "deepseek-v3";
  std::string contexts = "16384,32768";
  int64_t top_k = 2048;
  int64_t chunk = 64;
  int repeats = 3;
  int threads = 0;
  std::string json;
};

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 1 || v > (int64_t{1} << 20))
      throw Error("--contexts: '" + item + "' is not a context length between 1 and 1048576");
    out.push_back(v);
  }
  if (out.empty()) throw Error("--contexts: give at least one length");
  return out;
}

template <typename F>
double median_seconds(int repeats, F&& f) {
  f();  // warm-up: scratch buffers and oneDNN kernels
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Result {
  int64_t context, tokens;
  double dense, projections, indexer, sparse;  // seconds; indexer = scoring + top-k
};

Result measure(const MlaConfig& c, DsaIndexer& indexer, int64_t context, int64_t tokens,
               const Options& opt, std::mt19937_64& rng) {
  const int64_t h = c.num_heads, w = c.latent_dim(), r = c.kv_lora_rank, total = context + tokens;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> rows(static_cast<size_t>(total * w)), q(static_cast<size_t>(tokens * h * w));
  std::vector<float> out(static_cast<size_t>(tokens * h * r));
  for (float& v : rows) v = normal(rng);
  for (float& v : q) v = normal(rng);
  ops::AttentionParams p;
  p.q = q.data();
  p.q_token_stride = h * w;
  p.q_head_stride = w;
  p.k = p.v = ops::KvView::contiguous(rows.data(), w);
  p.out = out.data();
  p.out_token_stride = h * r;
  p.out_head_stride = r;
  p.num_queries = tokens;
  p.num_heads = h;
  p.qk_dim = w;
  p.v_dim = r;
  p.context_before = context;
  p.scale = static_cast<float>(c.softmax_scale());

  Result res{context, tokens, 0, 0, 0, 0};
  res.dense = median_seconds(opt.repeats, [&] { ops::latent_attention({&p, 1}); });

  // The indexer's key pool holds random keys for the context; the new tokens' keys are written
  // by select() into reserved rows on every call.
  const int64_t page = 64, di = indexer.key_width();
  PagedKvPool pool(di, page, (total + page - 1) / page);
  const std::vector<PagedKvPool::SeqId> seqs = {pool.add_sequence()};
  pool.reserve(seqs, std::vector<int64_t>{context});
  std::vector<float> key(static_cast<size_t>(di));
  for (int64_t t = 0; t < context; ++t) {
    for (float& v : key) v = normal(rng);
    convert_from_f32(key.data(), key.size(), DType::kF32, pool.writable_row(seqs[0], t));
  }
  pool.commit(seqs[0], context);
  pool.reserve(seqs, std::vector<int64_t>{tokens});
  const int64_t q_in = c.has_q_lora() ? c.q_lora_rank : c.hidden_size;
  std::vector<float> x(static_cast<size_t>(tokens * c.hidden_size)),
      cq(static_cast<size_t>(tokens * q_in));
  for (float& v : x) v = normal(rng);
  for (float& v : cq) v = normal(rng);
  const int64_t capacity = std::min(opt.top_k, total);
  std::vector<int32_t> lists(static_cast<size_t>(tokens * capacity)),
      counts(static_cast<size_t>(tokens));
  const std::vector<int64_t> new_tokens = {tokens};
  const double select = median_seconds(opt.repeats, [&] {
    indexer.select(x.data(), cq.data(), seqs, new_tokens, pool, opt.top_k, capacity, lists.data(),
                   counts.data());
  });
  std::vector<int64_t> pos(static_cast<size_t>(tokens), context);
  std::vector<float> ik(static_cast<size_t>(tokens * di)),
      iq(static_cast<size_t>(tokens * di * indexer.config().num_heads)),
      iw(static_cast<size_t>(tokens * indexer.config().num_heads));
  res.projections = median_seconds(opt.repeats, [&] {
    indexer.keys(x.data(), tokens, pos.data(), ik.data());
    indexer.queries(x.data(), cq.data(), tokens, pos.data(), iq.data(), iw.data());
  });
  res.indexer = std::max(0.0, select - res.projections);
  ops::SparseAttentionParams sp;
  sp.attn = p;
  sp.lists = {lists.data(), counts.data(), capacity, false};
  res.sparse = median_seconds(opt.repeats, [&] { ops::sparse_attention({&sp, 1}); });
  return res;
}

int run(const Options& opt) {
  if (opt.top_k < 1 || opt.top_k > (int64_t{1} << 20))
    throw Error("--top-k: must be between 1 and 1048576, got " + std::to_string(opt.top_k));
  if (opt.chunk < 0 || opt.chunk > 4096)
    throw Error("--chunk: must be between 0 and 4096, got " + std::to_string(opt.chunk));
  if (opt.repeats < 1 || opt.repeats > 1000) throw Error("--repeats: must be between 1 and 1000");
  if (opt.threads < 0) throw Error("--threads: must not be negative");
  const std::vector<int64_t> contexts = parse_list(opt.contexts);
  const MlaConfig c = preset_config(opt.preset);
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  DsaConfig dsa;  // DeepSeek-V3.2: 64 heads of 128
  dsa.top_k = opt.top_k;
  DsaIndexer indexer(c, dsa, DsaWeights::random(c, dsa, 1));
  std::mt19937_64 rng(1);
  std::fprintf(stderr, "bench_sparse: %s, k %lld, %d threads, contexts %s\n", opt.preset.c_str(),
               static_cast<long long>(opt.top_k), omp_get_max_threads(), opt.contexts.c_str());
  std::vector<Result> results;
  for (int64_t context : contexts) {
    for (int64_t tokens : {int64_t{1}, opt.chunk}) {
      if (tokens == 0) continue;
      results.push_back(measure(c, indexer, context, tokens, opt, rng));
      const Result& r = results.back();
      std::fprintf(stderr,
                   "context %lld, %lld new tokens: dense %.2f ms, indexer projections %.2f ms, "
                   "indexer scoring + top-k %.2f ms, sparse %.2f ms\n",
                   static_cast<long long>(context), static_cast<long long>(tokens), r.dense * 1e3,
                   r.projections * 1e3, r.indexer * 1e3, r.sparse * 1e3);
    }
  }
  std::printf("%9s %7s %10s %12s %12s %10s %14s %14s\n", "context", "tokens", "dense ms",
              "idx proj ms", "idx score ms", "sparse ms", "speed-up attn", "with indexer");
  nlohmann::json points = nlohmann::json::array();
  for (const Result& r : results) {
    std::printf("%9lld %7lld %10.2f %12.2f %12.2f %10.2f %13.2fx %13.2fx\n",
                static_cast<long long>(r.context), static_cast<long long>(r.tokens), r.dense * 1e3,
                r.projections * 1e3, r.indexer * 1e3, r.sparse * 1e3, r.dense / r.sparse,
                r.dense / (r.sparse + r.indexer));
    points.push_back({{"context", r.context},
                      {"new_tokens", r.tokens},
                      {"dense_seconds", r.dense},
                      {"indexer_projection_seconds", r.projections},
                      {"indexer_seconds", r.indexer},
                      {"sparse_attention_seconds", r.sparse},
                      {"speedup_attention", r.dense / r.sparse},
                      {"speedup_with_indexer", r.dense / (r.sparse + r.indexer)}});
  }
  if (!opt.json.empty()) {
    nlohmann::json j = {{"preset", opt.preset},
                        {"top_k", opt.top_k},
                        {"threads", omp_get_max_threads()},
                        {"repeats", opt.repeats},
                        {"index_heads", dsa.num_heads},
                        {"index_head_dim", dsa.head_dim},
                        {"points", points}};
    write_file_atomic(opt.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace
}  // namespace mla::bench

// Exit 0 on success; bad options give one line on stderr and exit code 2, as `mla` does.
int main(int argc, char** argv) {
  mla::bench::Options opt;
  CLI::App app{"Dense absorbed attention against DSA (indexer + sparse attention)", "bench_sparse"};
  app.add_option("--preset", opt.preset, "Model shape (default deepseek-v3)");
  app.add_option("--contexts", opt.contexts, "Comma-separated contexts (default 16384,32768)");
  app.add_option("--top-k", opt.top_k, "Keys per query (default 2048)");
  app.add_option("--chunk", opt.chunk,
                 "Tokens of the prefill chunk appended at each context (default 64; 0: off)");
  app.add_option("--repeats", opt.repeats, "Timed runs per point, median reported (default 3)");
  app.add_option("--threads", opt.threads, "Threads (default: all cores)");
  app.add_option("--json", opt.json, "Write the results as JSON to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bench_sparse: error: %s\n", e.what());
    return 2;
  }
  try {
    return mla::bench::run(opt);
  } catch (const mla::Error& e) {
    std::fprintf(stderr, "bench_sparse: error: %s\n", e.what());
    return 2;
  }
}
