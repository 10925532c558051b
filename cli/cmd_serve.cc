// mla serve --model DIR [--host H] [--port P] [--threads N] [--max-batch B] [--cache-tokens T]
//           [--api-key K]
// An OpenAI-compatible HTTP server over a whole DeepSeek checkpoint folder (config.json,
// safetensors, tokenizer.json, tokenizer_config.json): continuous batching over the paged latent
// cache, prefix caching, a chat page at /. docs/serve.md has the endpoints and figures.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "commands.h"
#include "deepseek_backend.h"
#include "http_server.h"
#include "mla/error.h"
#include "mla/model.h"
#include "model_dir.h"
#include "scheduler.h"
#include "threads.h"

namespace mla::cli {
namespace {

struct ServeOptions {
  std::string model, host = "127.0.0.1", api_key, weight_dtype, cache_dtype, name;
  int port = 8080;
  int64_t max_batch = 16, cache_tokens = 16384, max_queue = 64, prefill_chunk = 256;
  int64_t prefix_cache = 32, default_max_tokens = 256;
};

serve::HttpServer* g_server = nullptr;

void on_signal(int) {
  if (g_server) g_server->stop();
}

int run_serve(const ServeOptions& o) {
  DeepseekModel::Options mo;
  set_weight_dtype(o.weight_dtype, o.model, mo);
  set_cache_dtype(o.cache_dtype, mo);
  mo.cache_tokens = o.cache_tokens;
  mo.prefill_chunk = o.prefill_chunk;
  std::fprintf(stderr, "mla serve: loading %s\n", o.model.c_str());
  DeepseekModel model = DeepseekModel::load(o.model, mo);
  const DeepseekConfig& config = model.config();
  serve::TokenizerTextModel text(
      o.model, config.eos_token_id >= 0
                   ? std::optional<int32_t>(static_cast<int32_t>(config.eos_token_id))
                   : std::nullopt);
  if (text.vocab_size() > config.vocab_size) {
    throw Error(o.model + "/tokenizer.json: " + std::to_string(text.vocab_size()) +
                " tokens, but the model's vocab_size is " + std::to_string(config.vocab_size));
  }
  if (!text.chat_error().empty()) {
    std::fprintf(stderr, "mla serve: warning: chat requests will be refused: %s\n",
                 text.chat_error().c_str());
  }
  const std::string name =
      o.name.empty() ? std::filesystem::path(o.model).lexically_normal().filename().string()
                     : o.name;
  serve::DeepseekSequenceModel sequences(model, name.empty() ? "mla" : name);
  serve::Metrics metrics;
  serve::Scheduler scheduler(sequences,
                             {.max_batch = o.max_batch,
                              .max_queue = o.max_queue,
                              .step_tokens = std::max(o.prefill_chunk, o.max_batch),
                              .prefix_entries = o.prefix_cache},
                             metrics);
  serve::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = o.api_key;
  so.model_name = sequences.name();
  so.default_max_tokens = o.default_max_tokens;
  so.http_threads = static_cast<int>(std::max<int64_t>(32, o.max_batch + o.max_queue + 8));
  serve::HttpServer server(scheduler, text, sequences.max_positions(), metrics, so);
  const int port = server.bind();
  g_server = &server;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::fprintf(stderr,
               "mla serve: %s (%s weights), %s cache %lld tokens in pages of %lld, batch up to "
               "%lld; listening on http://%s:%d\n",
               sequences.name().c_str(), std::string(dtype_name(model.weight_dtype())).c_str(),
               std::string(dtype_name(model.cache_dtype())).c_str(),
               static_cast<long long>(sequences.pages_total() * sequences.page_size()),
               static_cast<long long>(sequences.page_size()), static_cast<long long>(o.max_batch),
               o.host.c_str(), port);
  std::fflush(stderr);
  server.serve();
  g_server = nullptr;
  std::fprintf(stderr, "mla serve: stopped\n");
  return 0;
}

}  // namespace

Runner add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server over a DeepSeek checkpoint folder");
  cmd->add_option("--model", o->model, "Checkpoint folder (config.json, safetensors, tokenizer)")
      ->required();
  cmd->add_option("--host", o->host, "Address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", o->port, "Port (default 8080; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  add_threads_option(cmd);
  cmd->add_option("--max-batch", o->max_batch, "Requests decoded together (default 16)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  cmd->add_option("--cache-tokens", o->cache_tokens,
                  "Latent cache size in tokens, all requests together (default 16384)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' on /v1/*");
  cmd->add_option("--weight-dtype", o->weight_dtype,
                  "f32, bf16 or int8 (default: the checkpoint's)");
  cmd->add_option("--cache-dtype", o->cache_dtype, kModelCacheDtypeHelp);
  cmd->add_option("--max-queue", o->max_queue,
                  "Requests waiting for cache room before 429 (default 64)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--prefill-chunk", o->prefill_chunk,
                  "Prompt tokens per step, so long prompts do not stall decoding (default 256)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--prefix-cache", o->prefix_cache,
                  "Finished sequences kept for prefix reuse (default 32; 0 = off)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 16));
  cmd->add_option("--default-max-tokens", o->default_max_tokens,
                  "max_tokens of a request that gives none (default 256)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--name", o->name, "Model name in the API (default: the folder's name)");
  return [o] { return run_serve(*o); };
}

}  // namespace mla::cli
