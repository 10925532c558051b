// mla forward --model DIR --tokens FILE --output FILE [--prefill P] [--threads N]
//             [--weight-dtype f32|bf16|int8]
// Runs a whole DeepSeek model over the token rows of FILE: the first P tokens of each row as one
// batched prefill, every later token as one cached decode step of the whole batch, and writes
// the F32 `logits` [batch, seq, vocab] of every position.
#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "mla/error.h"
#include "mla/model.h"
#include "mla/safetensors.h"
#include "model_dir.h"

namespace mla::cli {
namespace {

struct ForwardOptions {
  std::string model, tokens, output, weight_dtype, cache_dtype;
  int64_t prefill = -1;  // -1: every token
  int threads = 0;
};

int run_forward(const ForwardOptions& opt) {
  if (opt.threads < 0) throw Error("--threads: must not be negative");
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const TokenBatch tokens = read_token_file(opt.tokens);
  const int64_t batch = tokens.batch, seq = tokens.seq;
  const int64_t prefill = opt.prefill < 0 ? seq : opt.prefill;
  if (prefill > seq) {
    throw Error("--prefill: " + std::to_string(prefill) + " exceeds the " + std::to_string(seq) +
                " tokens of each row");
  }
  if (!std::filesystem::is_directory(opt.model))
    throw Error(opt.model + ": not a directory (--model expects a model folder)");
  DeepseekModel::Options mo;
  set_weight_dtype(opt.weight_dtype, opt.model, mo);
  set_cache_dtype(opt.cache_dtype, mo);
  mo.cache_tokens = batch * seq + batch * mo.page_size;
  DeepseekModel model = DeepseekModel::load(opt.model, mo);
  const int64_t vocab = model.config().vocab_size;
  for (size_t i = 0; i < tokens.ids.size(); ++i) {
    if (tokens.ids[i] >= vocab) {
      throw Error(opt.tokens + ": tensor 'tokens': id " + std::to_string(tokens.ids[i]) + " at " +
                  std::to_string(i) + " is outside the vocabulary of " + std::to_string(vocab));
    }
  }
  std::vector<DeepseekModel::SeqId> seqs;
  for (int64_t b = 0; b < batch; ++b) seqs.push_back(model.add_sequence());
  std::vector<float> logits(static_cast<size_t>(batch * seq * vocab));
  const auto at = [&](int64_t b, int64_t t) { return logits.data() + (b * seq + t) * vocab; };
  if (prefill > 0) {
    std::vector<int32_t> ids;
    for (int64_t b = 0; b < batch; ++b) {
      ids.insert(ids.end(), tokens.ids.begin() + b * seq, tokens.ids.begin() + b * seq + prefill);
    }
    const std::vector<int64_t> counts(static_cast<size_t>(batch), prefill);
    std::vector<float> out(static_cast<size_t>(batch * prefill * vocab));
    model.forward(ids, seqs, counts, out);
    for (int64_t b = 0; b < batch; ++b) {
      std::copy(out.begin() + b * prefill * vocab, out.begin() + (b + 1) * prefill * vocab,
                at(b, 0));
    }
  }
  const std::vector<int64_t> ones(static_cast<size_t>(batch), 1);
  std::vector<int32_t> step_ids(static_cast<size_t>(batch));
  std::vector<float> step_logits(static_cast<size_t>(batch * vocab));
  for (int64_t t = prefill; t < seq; ++t) {
    for (int64_t b = 0; b < batch; ++b) step_ids[b] = tokens.ids[b * seq + t];
    model.forward(step_ids, seqs, ones, step_logits);
    for (int64_t b = 0; b < batch; ++b) {
      std::copy(step_logits.begin() + b * vocab, step_logits.begin() + (b + 1) * vocab, at(b, t));
    }
  }
  SafetensorsWriter writer;
  writer.add("logits", {batch, seq, vocab}, logits);
  writer.write(opt.output);
  std::fprintf(
      stderr, "mla forward: %lld x %lld tokens (%lld prefill), %s weights, %s cache -> %s\n",
      static_cast<long long>(batch), static_cast<long long>(seq), static_cast<long long>(prefill),
      std::string(dtype_name(model.weight_dtype())).c_str(),
      std::string(dtype_name(model.cache_dtype())).c_str(), opt.output.c_str());
  return 0;
}

}  // namespace

Runner add_forward_command(CLI::App& app) {
  auto opt = std::make_shared<ForwardOptions>();
  CLI::App* cmd = app.add_subcommand(
      "forward", "Run a whole DeepSeek model over token rows and write the logits of every token");
  cmd->add_option("--model", opt->model, "Folder with config.json and the safetensors checkpoint")
      ->required();
  cmd->add_option("--tokens", opt->tokens,
                  "safetensors file with an I32/I64 tensor 'tokens' [batch, seq]")
      ->required();
  cmd->add_option("--output", opt->output,
                  "safetensors file to write F32 'logits' [batch, seq, vocab]")
      ->required();
  cmd->add_option("--prefill", opt->prefill,
                  "Tokens of each row run as one prefill call (default: all); the rest are "
                  "decoded one step at a time")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", opt->threads, "Threads (default: all cores)");
  cmd->add_option("--weight-dtype", opt->weight_dtype,
                  "f32 (exact), bf16 or int8 (default: f32 for a float32 checkpoint, else bf16)");
  cmd->add_option("--cache-dtype", opt->cache_dtype, kModelCacheDtypeHelp);
  return [opt] { return run_forward(*opt); };
}

}  // namespace mla::cli
