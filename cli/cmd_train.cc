// mla train: trains a decoder-only language model (MLA, MHA, GQA or MQA attention) on the
// embedded synthetic task or a text file, with a progress line, periodic validation,
// checkpoints, exact resume, JSONL metrics and a loss plot.
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "mla/error.h"
#include "mla/train.h"
#include "mla/train_checkpoint.h"
#include "plot.h"
#include "train_tasks.h"

namespace mla::cli {
namespace {

struct TrainCli {
  std::string config_path, preset, attention = "mla", ffn = "swiglu", norm = "rmsnorm";
  std::string sparse = "dense", mla_form = "naive";
  LmShape shape;
  bool untied = false;
  TrainOptions train;
  std::string checkpoint_dir, resume, metrics, plot;
  int64_t checkpoint_every = 0, log_every = 10;
  int threads = 0;
  bool steps_given = false;
  // Options that shape the model or the run; they may not be combined with --resume.
  std::vector<CLI::Option*> model_flags, run_flags;
  CLI::Option *seq_flag = nullptr, *config_flag = nullptr;
};

std::string duration(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds) + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", s / 60, s % 60);
  }
  return buf;
}

LmConfig build_config(TrainCli& o) {
  for (CLI::Option* f : o.model_flags) {
    if (o.config_flag->count() > 0 && f->count() > 0) {
      throw Error(f->get_name() +
                  ": not allowed with --config (the config file defines the model)");
    }
  }
  if (o.config_flag->count() > 0) {
    LmConfig c = load_lm_config(o.config_path);
    if (o.seq_flag->count() == 0) o.train.seq = std::min<int64_t>(c.max_seq_len, o.train.seq);
    return c;
  }
  LmShape s = o.preset.empty() ? LmShape{} : lm_preset_shape(o.preset);
  if (!o.preset.empty() && o.seq_flag->count() == 0) o.train.seq = s.max_seq_len;
  // Flags given on the command line override the preset's values.
  auto given = [&](const char* name) {
    return o.model_flags.end() !=
           std::find_if(o.model_flags.begin(), o.model_flags.end(),
                        [&](CLI::Option* f) { return f->get_name() == name && f->count() > 0; });
  };
  s.attention = parse_attention_kind(o.attention);
  if (given("--layers")) s.num_layers = o.shape.num_layers;
  if (given("--d-model")) s.d_model = o.shape.d_model;
  if (given("--heads")) s.heads = o.shape.heads;
  if (given("--kv-heads")) s.kv_heads = o.shape.kv_heads;
  if (given("--head-dim")) s.head_dim = o.shape.head_dim;
  if (given("--kv-lora-rank")) s.kv_lora_rank = o.shape.kv_lora_rank;
  if (given("--q-lora-rank")) s.q_lora_rank = o.shape.q_lora_rank;
  if (given("--rope-dim")) s.rope_dim = o.shape.rope_dim;
  if (given("--ffn-hidden")) s.ffn_hidden = o.shape.ffn_hidden;
  if (given("--dropout")) s.dropout = o.shape.dropout;
  if (given("--sparse")) {
    try {
      s.sparse = parse_sparse_spec(o.sparse);
    } catch (const Error& e) {
      std::string why = e.what();  // "sparse: <reason>" -> "--sparse: <reason>"
      throw Error("--sparse: " + why.substr(why.find(": ") + 2));
    }
  }
  if (given("--dense-layers")) s.dense_layers = o.shape.dense_layers;
  if (given("--mla-form")) s.absorbed = o.mla_form == "absorbed";
  s.ffn = o.ffn == "gelu" ? FfnKind::kGelu : FfnKind::kSwiGlu;
  s.norm = o.norm == "layernorm" ? NormKind::kLayerNorm : NormKind::kRmsNorm;
  s.tied_embeddings = !o.untied;
  s.max_seq_len = o.train.seq;
  return lm_config_from_shape(s);
}

void write_plot(const std::string& path, const TrainHistory& h) {
  PlotPanel panel;
  panel.title = "training and validation loss";
  panel.x_label = "step";
  panel.y_label = "loss (nats per byte)";
  panel.series.push_back(PlotSeries{"train", h.steps, h.loss});
  if (!h.val_steps.empty())
    panel.series.push_back(PlotSeries{"validation", h.val_steps, h.val_loss});
  write_line_plot(path, {panel});
}

int run_train(TrainCli& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  std::unique_ptr<Trainer> trainer;
  const bool resuming = !o.resume.empty();
  if (resuming) {
    for (CLI::Option* f : o.model_flags) {
      if (f->count() > 0)
        throw Error(f->get_name() +
                    ": not allowed with --resume (the checkpoint defines the model)");
    }
    for (CLI::Option* f : o.run_flags) {
      if (f->count() > 0)
        throw Error(f->get_name() +
                    ": not allowed with --resume (the checkpoint holds the run's settings)");
    }
    trainer = std::make_unique<Trainer>(Trainer::resume(o.resume, o.steps_given ? o.train.steps : 0,
                                                        o.train.data_path, train_data));
  } else {
    const LmConfig config = build_config(o);
    trainer = std::make_unique<Trainer>(config, o.train, train_data);
  }
  Trainer& t = *trainer;
  const LmConfig& c = t.config();
  const TrainOptions& opt = t.options();
  if (opt.steps <= t.steps_done() && resuming) {
    std::printf("the checkpoint is already at step %lld of %lld: nothing to do (raise --steps)\n",
                static_cast<long long>(t.steps_done()), static_cast<long long>(opt.steps));
    return 0;
  }
  std::printf(
      "model: %s attention, %lld layers, d_model %lld, %lld parameters, cache %lld "
      "numbers/token/layer\n",
      attention_kind_name(c.attention), static_cast<long long>(c.num_layers),
      static_cast<long long>(c.d_model), static_cast<long long>(t.model().num_parameters()),
      static_cast<long long>(c.cache_numbers_per_token()));
  if (opt.data_path.empty()) {
    std::printf("data: synthetic '%s' task (built in)\n", opt.task.c_str());
  } else {
    std::printf("data: %s (%lld training bytes, %lld validation bytes)\n", opt.data_path.c_str(),
                static_cast<long long>(t.data().train_tokens()),
                static_cast<long long>(t.data().val_tokens()));
  }
  std::printf(
      "run: %s%lld steps, batch %lld x %lld tokens, lr %.2g, %d threads\n",
      resuming ? ("resuming at step " + std::to_string(t.steps_done()) + " of ").c_str() : "",
      static_cast<long long>(opt.steps), static_cast<long long>(opt.batch),
      static_cast<long long>(opt.seq), opt.lr, omp_get_max_threads());
  std::fflush(stdout);

  // Output files may name folders that do not exist yet (runs/copy.jsonl): create them.
  for (const std::string& file : {o.metrics, o.plot}) {
    const std::filesystem::path parent = std::filesystem::path(file).parent_path();
    std::error_code ec;
    if (!file.empty() && !parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) throw Error(file + ": cannot create its folder: " + ec.message());
  }
  std::ofstream metrics;
  if (!o.metrics.empty()) {
    metrics.open(o.metrics, resuming ? std::ios::app : std::ios::trunc);
    if (!metrics) throw Error(o.metrics + ": cannot open the metrics file for writing");
  }
  if (!o.checkpoint_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.checkpoint_dir, ec);
    if (ec)
      throw Error(o.checkpoint_dir + ": cannot create the checkpoint folder: " + ec.message());
  }
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  double avg_step = 0.0;
  std::string last_checkpoint;
  while (t.steps_done() < opt.steps) {
    const StepResult r = t.step();
    avg_step = avg_step == 0.0 ? r.seconds : 0.9 * avg_step + 0.1 * r.seconds;
    const bool eval = r.step % opt.eval_every == 0 || r.step == opt.steps;
    const double val = eval ? t.evaluate() : NAN;
    if (metrics.is_open()) {
      nlohmann::ordered_json j = {{"step", r.step},
                                  {"loss", r.loss},
                                  {"lr", r.lr},
                                  {"tokens_per_second", r.tokens_per_second},
                                  {"grad_norm", r.grad_norm},
                                  {"seconds", r.seconds}};
      if (eval) j["val_loss"] = val;
      metrics << j.dump() << "\n";
      metrics.flush();
    }
    const double left = avg_step * static_cast<double>(opt.steps - r.step);
    char line[256];
    std::snprintf(line, sizeof(line), "step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | %s left",
                  static_cast<long long>(r.step), static_cast<long long>(opt.steps), r.loss, r.lr,
                  r.tokens_per_second, duration(left).c_str());
    if (tty) {
      std::printf("\r%s\033[K", line);
      if (eval) std::printf("\n  validation loss %.4f\n", val);
    } else if (eval || r.step % o.log_every == 0 || r.step == 1) {
      std::printf("%s%s\n", line, eval ? (" | val_loss " + std::to_string(val)).c_str() : "");
    }
    std::fflush(stdout);
    if (!o.checkpoint_dir.empty() &&
        ((o.checkpoint_every > 0 && r.step % o.checkpoint_every == 0) || r.step == opt.steps)) {
      last_checkpoint = checkpoint_file_name(o.checkpoint_dir, r.step);
      t.save(last_checkpoint);
    }
  }
  if (!o.plot.empty()) write_plot(o.plot, t.history());
  const TrainHistory& h = t.history();
  std::printf("done: step %lld, final validation loss %.4f", static_cast<long long>(t.steps_done()),
              h.val_loss.empty() ? NAN : h.val_loss.back());
  if (!last_checkpoint.empty()) std::printf(", checkpoint %s", last_checkpoint.c_str());
  if (!o.plot.empty()) std::printf(", plot %s", o.plot.c_str());
  std::printf("\n");
  return 0;
}

}  // namespace

Runner add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainCli>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train a small language model (MLA, MHA, GQA or MQA attention)");
  TrainOptions& t = o->train;
  o->config_flag =
      cmd->add_option("--config", o->config_path, "Model config JSON (see docs/training.md)");
  auto model = [&](CLI::Option* f) { o->model_flags.push_back(f); };
  model(cmd->add_option("--attention", o->attention, "mla, mha, gqa or mqa (default mla)")
            ->check(CLI::IsMember({"mla", "mha", "gqa", "mqa"})));
  model(cmd->add_option("--preset", o->preset, "Model size: tiny, small or medium"));
  model(cmd->add_option("--layers", o->shape.num_layers, "Number of blocks (default 2)")
            ->check(CLI::Range(1, 1024)));
  model(cmd->add_option("--d-model", o->shape.d_model, "Model width (default 128)")
            ->check(CLI::Range(1, 65536)));
  model(cmd->add_option("--heads", o->shape.heads, "Attention heads (default 4)")
            ->check(CLI::Range(1, 4096)));
  model(cmd->add_option("--kv-heads", o->shape.kv_heads, "GQA key/value heads (default heads / 2)")
            ->check(CLI::Range(1, 4096)));
  model(cmd->add_option("--head-dim", o->shape.head_dim, "Head width (default d_model / heads)")
            ->check(CLI::Range(1, 65536)));
  model(cmd->add_option("--kv-lora-rank", o->shape.kv_lora_rank,
                        "MLA latent width R (default d_model / 2)")
            ->check(CLI::Range(1, 65536)));
  model(cmd->add_option("--q-lora-rank", o->shape.q_lora_rank,
                        "MLA query latent width (default 0: none)")
            ->check(CLI::Range(0, 65536)));
  model(cmd->add_option("--rope-dim", o->shape.rope_dim,
                        "Rotary width (MLA default head_dim / 2; 0 = no RoPE)")
            ->check(CLI::Range(0, 65536)));
  model(
      cmd->add_option("--ffn", o->ffn, "swiglu or gelu")->check(CLI::IsMember({"swiglu", "gelu"})));
  model(cmd->add_option("--ffn-hidden", o->shape.ffn_hidden, "Feed-forward width")
            ->check(CLI::Range(1, 1 << 20)));
  model(cmd->add_option("--norm", o->norm, "rmsnorm or layernorm")
            ->check(CLI::IsMember({"rmsnorm", "layernorm"})));
  model(cmd->add_flag("--untied", o->untied,
                      "Separate output head (default: tied to the embedding)"));
  model(cmd->add_option("--dropout", o->shape.dropout, "Residual dropout (default 0)")
            ->check(CLI::Range(0.0, 0.99)));
  model(cmd->add_option("--sparse", o->sparse,
                        "Sparse attention (MLA): window:size=W, block:size=B,local=L,global=G or "
                        "topk:k=K, each optionally with ,dense-heads=N (default dense)"));
  model(cmd->add_option("--dense-layers", o->shape.dense_layers,
                        "With --sparse: the first N layers stay dense (default 0)"));
  model(cmd->add_option("--mla-form", o->mla_form,
                        "MLA layers train in the naive (default) or the absorbed form")
            ->check(CLI::IsMember({"naive", "absorbed"})));
  auto run = [&](CLI::Option* f) { o->run_flags.push_back(f); };
  run(cmd->add_option("--batch", t.batch, "Sequences per step (default 16)")
          ->check(CLI::Range(1, 1 << 20)));
  o->seq_flag = cmd->add_option("--seq", t.seq, "Tokens per sequence (default 64)")
                    ->check(CLI::Range(1, 65536));
  run(o->seq_flag);
  run(cmd->add_option("--lr", t.lr, "Peak learning rate (default 3e-3)")
          ->check(CLI::PositiveNumber));
  run(cmd->add_option("--min-lr", t.min_lr, "Final learning rate (default lr / 10)")
          ->check(CLI::NonNegativeNumber));
  run(cmd->add_option("--warmup", t.warmup, "Warm-up steps (default min(100, steps / 10))")
          ->check(CLI::NonNegativeNumber));
  run(cmd->add_option("--weight-decay", t.weight_decay,
                      "AdamW decoupled weight decay (default 0.1)")
          ->check(CLI::NonNegativeNumber));
  run(cmd->add_option("--grad-clip", t.grad_clip, "Global gradient-norm limit, 0 = off (default 1)")
          ->check(CLI::NonNegativeNumber));
  run(cmd->add_option("--eval-every", t.eval_every, "Validate every N steps (default 100)")
          ->check(CLI::Range(1, 1 << 30)));
  run(cmd->add_option("--eval-batches", t.eval_batches, "Validation batches (default 8)")
          ->check(CLI::Range(1, 1 << 20)));
  run(cmd->add_option("--seed", t.seed, "Seed of weights, batches and dropout (default 1)"));
  run(cmd->add_option("--task", t.task, "Built-in task without --data: copy or recall")
          ->check(CLI::IsMember({"copy", "recall"})));
  run(cmd->add_option("--val-fraction", t.val_fraction, "Held-out end of --data (default 0.1)")
          ->check(CLI::Range(0.001, 0.9)));
  auto* steps = cmd->add_option("--steps", t.steps, "Total optimiser steps (default 500)")
                    ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--data", t.data_path,
                  "Text file to train on (default: the built-in synthetic task)");
  cmd->add_option("--checkpoint-dir", o->checkpoint_dir,
                  "Folder for step_*.safetensors checkpoints");
  cmd->add_option("--checkpoint-every", o->checkpoint_every,
                  "Also checkpoint every N steps (default: only at the end)")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--resume", o->resume,
                  "Continue a checkpoint (file or checkpoint folder) exactly");
  cmd->add_option("--metrics", o->metrics, "Append one JSON object per step to this .jsonl file");
  cmd->add_option("--plot", o->plot, "Write the training and validation loss curves to this PNG");
  cmd->add_option("--log-every", o->log_every,
                  "Progress line every N steps when not on a terminal (default 10)")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all)")
      ->check(CLI::Range(1, 4096));
  return [o, steps] {
    o->steps_given = steps->count() > 0;
    return run_train(*o);
  };
}

}  // namespace mla::cli
