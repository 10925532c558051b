// mla generate --model DIR (--prompt TEXT | --chat [--system TEXT]) [--max-tokens N]
//              [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]
//              [--seed S] [--stop TEXT]... [--threads N] [--json]
// Streams the continuation of a prompt (or a chat answer) to stdout as tokens arrive, for a
// DeepSeek checkpoint folder or a model `mla train` wrote (--checkpoint is the older spelling of
// --model for those). --chat without --prompt is an interactive conversation whose history
// stays in the cache.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "mla/error.h"
#include "mla/sampler.h"
#include "mla/text_stream.h"
#include "text_backend.h"
#include "threads.h"

namespace mla::cli {
namespace {

struct GenerateCli {
  std::string model, checkpoint, prompt, system, weight_dtype, cache_dtype;
  bool chat = false, json = false, verbose = false, no_cache = false;
  int64_t max_tokens = 256;
  SamplerParams sampler;
  std::vector<std::string> stops;
  int64_t cache_tokens = 16384;
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Turn {
  std::string text, finish_reason;
  int64_t prompt_tokens = 0, reused_tokens = 0, generated = 0;
  double prompt_seconds = 0, generation_seconds = 0;
};

// One sequence and the tokens its cache holds.
class Session {
 public:
  Session(TextBackend& backend, const GenerateCli& o) : backend_(backend), o_(o) {}

  // Feeds `prompt` (reusing the cached tokens it starts with) and generates an answer, printed
  // as it comes unless `quiet`.
  Turn run(const std::vector<int32_t>& prompt, bool quiet) {
    Turn t;
    if (prompt.empty()) throw Error("--prompt: encodes to no tokens");
    const int64_t room = backend_.max_positions() - static_cast<int64_t>(prompt.size());
    if (room < 1) {
      throw Error("--prompt: " + std::to_string(prompt.size()) +
                  " tokens leave no room in the model's context of " +
                  std::to_string(backend_.max_positions()) + " tokens");
    }
    size_t keep = 0;  // the last prompt token is always fed: its logits start the answer
    while (!o_.no_cache && keep < fed_.size() && keep + 1 < prompt.size() &&
           fed_[keep] == prompt[keep]) {
      ++keep;
    }
    if (keep < fed_.size()) {
      backend_.truncate(static_cast<int64_t>(keep));
      fed_.resize(keep);
    }
    t.prompt_tokens = static_cast<int64_t>(prompt.size());
    t.reused_tokens = static_cast<int64_t>(keep);
    Sampler sampler(o_.sampler);
    sampler.accept(prompt);
    Utf8Stream utf8;
    StopMatcher stops(o_.stops);
    const std::vector<int32_t> eos = backend_.eos_tokens();
    auto emit = [&](const std::string& s) {
      t.text += s;
      if (!quiet && !s.empty()) {
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
      }
    };
    const auto t0 = Clock::now();
    std::span<const float> logits =
        feed(std::span<const int32_t>(prompt.data() + keep, prompt.size() - keep));
    t.prompt_seconds = seconds_since(t0);
    const auto t1 = Clock::now();
    const int64_t limit = std::min(o_.max_tokens, room);
    t.finish_reason = "length";
    while (t.generated < limit) {
      const int32_t next = sampler.sample(logits);
      ++t.generated;
      if (std::find(eos.begin(), eos.end(), next) != eos.end()) {
        t.finish_reason = "stop";
        break;
      }
      const StopMatcher::Result r = stops.push(utf8.push(backend_.token_bytes(next)));
      emit(r.text);
      if (r.stopped) {
        t.finish_reason = "stop";
        break;
      }
      if (t.generated == limit) break;
      logits = feed(std::span<const int32_t>(&next, 1));
    }
    if (!stops.stopped()) {
      const StopMatcher::Result r = stops.push(utf8.finish());
      emit(r.text);
      if (!r.stopped) emit(stops.finish());
    }
    t.generation_seconds = seconds_since(t1);
    return t;
  }

 private:
  std::span<const float> feed(std::span<const int32_t> tokens) {
    fed_.insert(fed_.end(), tokens.begin(), tokens.end());
    if (!o_.no_cache) return backend_.feed(tokens);
    backend_.reset();  // the reference path: the whole sequence again, every step
    return backend_.feed(fed_);
  }

  TextBackend& backend_;
  const GenerateCli& o_;
  std::vector<int32_t> fed_;
};

void print_speed(const Turn& t) {
  std::fprintf(
      stderr,
      "\nprompt: %lld tokens (%lld from the cache) in %.3f s (%.1f tokens/s); "
      "generation: %lld tokens in %.3f s (%.1f tokens/s), %s\n",
      static_cast<long long>(t.prompt_tokens), static_cast<long long>(t.reused_tokens),
      t.prompt_seconds,
      static_cast<double>(t.prompt_tokens - t.reused_tokens) / std::max(t.prompt_seconds, 1e-9),
      static_cast<long long>(t.generated), t.generation_seconds,
      static_cast<double>(t.generated) / std::max(t.generation_seconds, 1e-9),
      t.finish_reason.c_str());
}

nlohmann::json summary(const Turn& t) {
  return {{"text", t.text},
          {"finish_reason", t.finish_reason},
          {"prompt_tokens", t.prompt_tokens},
          {"cached_prompt_tokens", t.reused_tokens},
          {"generated_tokens", t.generated},
          {"prompt_seconds", t.prompt_seconds},
          {"generation_seconds", t.generation_seconds},
          {"prompt_tokens_per_s", static_cast<double>(t.prompt_tokens - t.reused_tokens) /
                                      std::max(t.prompt_seconds, 1e-9)},
          {"generation_tokens_per_s",
           static_cast<double>(t.generated) / std::max(t.generation_seconds, 1e-9)}};
}

int interactive_chat(TextBackend& backend, const GenerateCli& o) {
  Session session(backend, o);
  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  const bool tty = isatty(STDIN_FILENO) != 0;
  if (tty)
    std::fprintf(stderr, "chat with %s; an empty line or Ctrl-D ends\n",
                 backend.describe().c_str());
  std::string line;
  for (;;) {
    if (tty) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || line.empty()) break;
    messages.push_back({"user", line});
    const Turn t = session.run(backend.encode_chat(messages), o.json);
    if (o.json) {
      std::printf(
          "%s\n",
          summary(t).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("\n");
      print_speed(t);
    }
    std::fflush(stdout);
    messages.push_back({"assistant", t.text});
  }
  return 0;
}

int run_generate(GenerateCli& o) {
  if (!o.model.empty() && !o.checkpoint.empty()) {
    throw Error("--model and --checkpoint: give one (they name the same thing)");
  }
  const std::string path = o.model.empty() ? o.checkpoint : o.model;
  if (path.empty()) throw Error("--model: required (a checkpoint folder)");
  if (!o.chat && o.prompt.empty()) throw Error("--prompt: required unless --chat");
  if (!o.chat && !o.system.empty()) throw Error("--system: only with --chat");
  validate(o.sampler);
  for (const std::string& s : o.stops) {
    if (s.empty()) throw Error("--stop: must not be empty");
  }
  std::unique_ptr<TextBackend> backend =
      open_text_backend(path, {o.weight_dtype, o.cache_dtype, o.cache_tokens});
  if (o.verbose) std::fprintf(stderr, "model: %s\n", backend->describe().c_str());
  if (o.chat && o.prompt.empty()) return interactive_chat(*backend, o);
  std::vector<int32_t> prompt;
  if (o.chat) {
    std::vector<ChatMessage> messages;
    if (!o.system.empty()) messages.push_back({"system", o.system});
    messages.push_back({"user", o.prompt});
    prompt = backend->encode_chat(messages);
  } else {
    prompt = backend->encode_prompt(o.prompt);
    if (!o.json) {  // a plain continuation shows its prompt first, as before
      std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
      std::fflush(stdout);
    }
  }
  Session session(*backend, o);
  const Turn t = session.run(prompt, o.json);
  if (o.json) {
    std::printf("%s\n",
                summary(t).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n");
    print_speed(t);
  }
  return 0;
}

}  // namespace

Runner add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateCli>();
  CLI::App* cmd = app.add_subcommand(
      "generate", "Stream a continuation or a chat answer from a model folder or checkpoint");
  cmd->add_option("--model", o->model,
                  "DeepSeek checkpoint folder, or a checkpoint written by `mla train`");
  cmd->add_option("--checkpoint", o->checkpoint,
                  "A checkpoint written by `mla train` (file or "
                  "folder: its latest step); same as --model");
  cmd->add_option("--prompt", o->prompt, "Text to continue (with --chat: the user's message)");
  cmd->add_flag("--chat", o->chat,
                "Apply the model's chat template; without --prompt, an interactive chat");
  cmd->add_option("--system", o->system, "System message (with --chat)");
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens to generate at most (default 256)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("--temperature", o->sampler.temperature,
                  "Sampling temperature; 0 = greedy (default 1)");
  cmd->add_option("--top-k", o->sampler.top_k, "Keep the k most likely tokens; 0 = all");
  cmd->add_option("--top-p", o->sampler.top_p, "Keep the most likely tokens up to this mass");
  cmd->add_option("--min-p", o->sampler.min_p,
                  "Keep tokens at least this fraction as likely as the best");
  cmd->add_option("--repeat-penalty", o->sampler.repeat_penalty,
                  "Penalty for tokens among the last 64 (llama.cpp's; 1 = none)");
  cmd->add_option("--seed", o->sampler.seed, "Sampling seed (default 1)");
  cmd->add_option("--stop", o->stops, "Stop before this text (repeatable)");
  add_threads_option(cmd);
  cmd->add_option("--weight-dtype", o->weight_dtype, "f32, bf16 or int8 (DeepSeek folders)");
  cmd->add_option("--cache-dtype", o->cache_dtype, "f32, bf16, fp8 or int8 (DeepSeek folders)");
  cmd->add_option("--cache-tokens", o->cache_tokens, "Latent cache size in tokens (default 16384)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_flag("--json", o->json, "Print one JSON summary (text, tokens, speeds) instead");
  cmd->add_flag("--no-cache", o->no_cache,
                "Recompute the whole sequence every step (the reference path)");
  cmd->add_flag("--verbose", o->verbose, "Describe the model on stderr");
  return [o] { return run_generate(*o); };
}

}  // namespace mla::cli
