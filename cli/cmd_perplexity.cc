// mla perplexity --model DIR --file F [--context N] [--stride S] [--threads N] [--json]
// Perplexity of a text file, as judges of a quantization measure it (llama.cpp's
// llama-perplexity, Hugging Face's strided evaluation): the file is tokenized once (bos first
// when the tokenizer adds one), windows of `context` tokens start every `stride` tokens, and each
// window scores only the tokens the previous one did not, each predicted from everything before
// it in its window. perplexity = exp(mean negative log-likelihood), log-softmax in double.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "mla/error.h"
#include "text_backend.h"
#include "threads.h"

namespace mla::cli {
namespace {

struct PerplexityCli {
  std::string model, file, weight_dtype, cache_dtype;
  int64_t context = 512, stride = 0;  // stride 0: = context (no overlap)
  bool json = false;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the file");
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().empty()) throw Error(path + ": the file is empty");
  return text.str();
}

// -log softmax(logits)[target], in double.
double nll(const float* logits, int64_t vocab, int32_t target) {
  double max = logits[0];
  for (int64_t v = 1; v < vocab; ++v) max = std::max(max, static_cast<double>(logits[v]));
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(logits[v]) - max);
  return std::log(sum) + max - static_cast<double>(logits[target]);
}

void progress(int64_t done, int64_t total, double seconds) {
  const int width = 30;
  const int filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
  std::fprintf(stderr, "\r[%s%s] %3lld%% %lld/%lld tokens, %.1f tokens/s",
               std::string(static_cast<size_t>(filled), '=').c_str(),
               std::string(static_cast<size_t>(width - filled), ' ').c_str(),
               static_cast<long long>(100 * done / std::max<int64_t>(total, 1)),
               static_cast<long long>(done), static_cast<long long>(total),
               static_cast<double>(done) / std::max(seconds, 1e-9));
  std::fflush(stderr);
}

int run_perplexity(const PerplexityCli& o) {
  if (o.context < 2) throw Error("--context: must be at least 2 tokens");
  const int64_t stride = o.stride == 0 ? o.context : o.stride;
  if (stride < 1 || stride > o.context) {
    throw Error("--stride: must be between 1 and --context (" + std::to_string(o.context) + ")");
  }
  const std::string text = read_text(o.file);
  std::unique_ptr<TextBackend> backend =
      open_text_backend(o.model, {o.weight_dtype, o.cache_dtype, o.context});
  if (o.context > backend->max_positions()) {
    throw Error("--context: " + std::to_string(o.context) + " exceeds the model's context of " +
                std::to_string(backend->max_positions()) + " tokens");
  }
  const std::vector<int32_t> tokens = backend->encode_prompt(text);
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 2) throw Error(o.file + ": fewer than 2 tokens, nothing to predict");
  const int64_t vocab = backend->vocab_size();
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double total_nll = 0;
  int64_t scored = 0, processed = 0;
  std::vector<float> logits;
  const int64_t chunk = 256;  // tokens per forward call: bounds the logits buffer
  for (int64_t begin = 0, prev_end = 0; prev_end < n; begin += stride) {
    const int64_t end = std::min(begin + o.context, n);
    const int64_t first_target = std::max(prev_end, begin + 1);
    backend->reset();
    for (int64_t at = begin; at < end; at += chunk) {
      const int64_t len = std::min(chunk, end - at);
      backend->feed_all(std::span<const int32_t>(tokens.data() + at, static_cast<size_t>(len)),
                        logits);
      // logits row i predicts token at + i + 1.
      for (int64_t i = 0; i < len; ++i) {
        const int64_t target = at + i + 1;
        if (target < first_target || target >= end) continue;
        total_nll += nll(logits.data() + i * vocab, vocab, tokens[static_cast<size_t>(target)]);
        ++scored;
      }
      processed += len;
      progress(std::min(end, n), n, elapsed());
    }
    prev_end = end;
  }
  std::fprintf(stderr, "\n");
  const double seconds = elapsed();
  const double ppl = std::exp(total_nll / static_cast<double>(scored));
  if (o.json) {
    const nlohmann::json j = {{"perplexity", ppl},
                              {"mean_nll", total_nll / static_cast<double>(scored)},
                              {"tokens", n},
                              {"scored_tokens", scored},
                              {"processed_tokens", processed},
                              {"context", o.context},
                              {"stride", stride},
                              {"seconds", seconds},
                              {"tokens_per_s", static_cast<double>(processed) / seconds}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("perplexity %.4f over %lld tokens (context %lld, stride %lld); %.1f tokens/s\n",
                ppl, static_cast<long long>(scored), static_cast<long long>(o.context),
                static_cast<long long>(stride), static_cast<double>(processed) / seconds);
  }
  return 0;
}

}  // namespace

Runner add_perplexity_command(CLI::App& app) {
  auto o = std::make_shared<PerplexityCli>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text file");
  cmd->add_option("--model", o->model, "DeepSeek checkpoint folder (or an `mla train` checkpoint)")
      ->required();
  cmd->add_option("--file", o->file, "Text file")->required();
  cmd->add_option("--context", o->context, "Tokens per window (default 512)");
  cmd->add_option("--stride", o->stride, "Tokens between window starts (default: --context)");
  add_threads_option(cmd);
  cmd->add_option("--weight-dtype", o->weight_dtype, "f32, bf16 or int8 (DeepSeek folders)");
  cmd->add_option("--cache-dtype", o->cache_dtype, "f32, bf16, fp8 or int8 (DeepSeek folders)");
  cmd->add_flag("--json", o->json, "Print one JSON object instead");
  return [o] { return run_perplexity(*o); };
}

}  // namespace mla::cli
