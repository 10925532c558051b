// mla attention --model DIR --layer L --input IN.safetensors --output OUT.safetensors
//               [--path naive|absorbed] [--prefill P] [--weight-dtype f32|bf16]
//               [--cache-dtype f32|bf16|fp8|int8] [--sparse SPEC]
// Runs one MLA layer over x [batch, seq, hidden] and writes y [batch, seq, hidden] (F32). With
// --prefill P the first P tokens go at once and each later token goes alone through the cache.
// --sparse picks a sparse pattern (include/mla/sparse.h); dsa reads the layer's indexer.* tensors
// and index_n_heads / index_head_dim from config.json (DeepSeek-V3.2 names).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cache_dtype.h"
#include "commands.h"
#include "mla/error.h"
#include "mla/layer.h"
#include "mla/quantized_row.h"
#include "mla/safetensors.h"
#include "model_dir.h"
#include "threads.h"

namespace mla::cli {
namespace {

struct AttentionOptions {
  std::string model;
  int64_t layer = 0;
  std::string input;
  std::string output;
  std::string path = "absorbed";
  int64_t prefill = -1;  // -1: the whole sequence at once
  std::string weight_dtype = "f32";
  std::string cache_dtype = "f32";
  std::string sparse;
};

DType parse_precision(const std::string& option, const std::string& value) {
  if (value == "f32") return DType::kF32;
  if (value == "bf16") return DType::kBF16;
  throw Error(option + ": unknown value '" + value + "' (use f32 or bf16)");
}

struct Input {
  std::vector<float> x;
  int64_t batch = 0, seq = 0;
};

Input read_input(const std::string& path, const MlaConfig& config) {
  SafetensorsFile file = SafetensorsFile::open(path);
  if (!file.contains("x"))
    throw Error(path + ": no tensor 'x' (the input must hold x [batch, seq, hidden])");
  const TensorInfo& info = file.info("x");
  if (info.dtype != DType::kF32 && info.dtype != DType::kBF16) {
    throw Error(path + ": tensor 'x': dtype " + std::string(dtype_name(info.dtype)) +
                " is not supported (use F32 or BF16)");
  }
  if (info.shape.size() != 3) {
    throw Error(path + ": tensor 'x': expected 3 dimensions [batch, seq, hidden], got shape " +
                shape_to_string(info.shape));
  }
  if (info.shape[2] != config.hidden_size) {
    throw Error(path + ": tensor 'x': hidden size " + std::to_string(info.shape[2]) +
                " does not match the config's hidden_size " + std::to_string(config.hidden_size));
  }
  if (info.shape[0] < 1 || info.shape[1] < 1) {
    throw Error(path + ": tensor 'x': batch and seq must be at least 1, got shape " +
                shape_to_string(info.shape));
  }
  return Input{file.read_f32("x"), info.shape[0], info.shape[1]};
}

// Copies tokens [t0, t0 + count) of every sequence: (B, S, d) -> (B, count, d), or back.
void gather_tokens(const float* src, int64_t batch, int64_t seq, int64_t d, int64_t t0,
                   int64_t count, float* dst) {
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(dst + b * count * d, src + (b * seq + t0) * d, sizeof(float) * count * d);
  }
}
void scatter_tokens(const float* src, int64_t batch, int64_t seq, int64_t d, int64_t t0,
                    int64_t count, float* dst) {
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(dst + (b * seq + t0) * d, src + b * count * d, sizeof(float) * count * d);
  }
}

// Prefill of the first `prefill` tokens, then one token at a time through `cache`.
template <typename Cache>
void run_with_cache(MlaLayer& layer, const Input& in, int64_t prefill, std::vector<float>& y) {
  const int64_t d = layer.config().hidden_size, d_out = layer.config().out_size();
  Cache cache(layer.config(), in.batch, in.seq);
  std::vector<float> x_part(static_cast<size_t>(in.batch * std::max<int64_t>(prefill, 1) * d));
  std::vector<float> y_part(static_cast<size_t>(in.batch * std::max<int64_t>(prefill, 1) * d_out));
  int64_t t = 0;
  while (t < in.seq) {
    const int64_t count = (t == 0 && prefill > 0) ? prefill : 1;
    const auto n = static_cast<size_t>(in.batch * count * d);
    gather_tokens(in.x.data(), in.batch, in.seq, d, t, count, x_part.data());
    layer.forward(std::span<const float>(x_part.data(), n), in.batch, count, cache,
                  std::span<float>(y_part.data(), static_cast<size_t>(in.batch * count * d_out)));
    scatter_tokens(y_part.data(), in.batch, in.seq, d_out, t, count, y.data());
    t += count;
  }
}

// The same through a paged pool, whose rows may be stored in bf16. (B, count, d) is already the
// packed layout of B sequences with `count` new tokens each.
void run_with_pool(MlaLayer& layer, const Input& in, int64_t prefill, AttentionPath path,
                   DType dtype, std::vector<float>& y) {
  const int64_t d = layer.config().hidden_size, d_out = layer.config().out_size(), page = 64;
  const int64_t pages = in.batch * ((in.seq + page - 1) / page);
  // Quantized rows keep the rotary part (Dr numbers) in bf16 (mla/quantized_row.h).
  PagedKvPool pool(layer.paged_token_width(path), page, pages, dtype,
                   is_quantized_cache_dtype(dtype) ? layer.config().qk_rope_head_dim : 0);
  // DSA keeps the indexer's keys in a pool of their own, with the same sequence ids.
  const bool dsa = layer.sparse().kind == SparseKind::kDsa;
  PagedKvPool index_pool(dsa ? layer.indexer()->key_width() : 1, page, dsa ? pages : 1,
                         is_quantized_cache_dtype(dtype) ? DType::kBF16 : dtype);
  std::vector<PagedKvPool::SeqId> seqs;
  for (int64_t b = 0; b < in.batch; ++b) {
    seqs.push_back(pool.add_sequence());
    index_pool.add_sequence();
  }
  std::vector<float> x_part(static_cast<size_t>(in.batch * std::max<int64_t>(prefill, 1) * d));
  std::vector<float> y_part(static_cast<size_t>(in.batch * std::max<int64_t>(prefill, 1) * d_out));
  int64_t t = 0;
  while (t < in.seq) {
    const int64_t count = (t == 0 && prefill > 0) ? prefill : 1;
    const auto n = static_cast<size_t>(in.batch * count * d);
    gather_tokens(in.x.data(), in.batch, in.seq, d, t, count, x_part.data());
    const std::vector<int64_t> counts(static_cast<size_t>(in.batch), count);
    const std::span<float> y_out(y_part.data(), static_cast<size_t>(in.batch * count * d_out));
    if (dsa) {
      layer.forward(std::span<const float>(x_part.data(), n), seqs, counts, pool, path, y_out,
                    index_pool);
    } else {
      layer.forward(std::span<const float>(x_part.data(), n), seqs, counts, pool, path, y_out);
    }
    scatter_tokens(y_part.data(), in.batch, in.seq, d_out, t, count, y.data());
    t += count;
  }
}

// index_n_heads / index_head_dim of a DeepSeek-V3.2 config.json, when it has them.
DsaConfig read_dsa_config(const std::string& model_dir, const MlaConfig& config) {
  DsaConfig dsa;
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_object()) {
    for (auto [field, target] :
         {std::pair{"index_n_heads", &dsa.num_heads}, {"index_head_dim", &dsa.head_dim}}) {
      if (!j.contains(field)) continue;
      if (!j[field].is_number_integer()) throw Error(path + ": " + field + ": expected an integer");
      *target = j[field].get<int64_t>();
    }
  }
  try {
    dsa.validate(config);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return dsa;
}

void configure_sparse(MlaLayer& layer, const AttentionOptions& opt, const ModelDir& model) {
  SparseSpec spec;
  try {
    spec = parse_sparse_spec(opt.sparse);
    spec.validate(layer.config().num_heads);
  } catch (const Error& e) {
    std::string why = e.what();  // "sparse: <reason>" -> "--sparse: <reason>"
    if (why.rfind("sparse: ", 0) == 0) why = why.substr(8);
    throw Error("--sparse: " + why);
  }
  if (spec.kind == SparseKind::kDsa) {
    DsaConfig dsa = read_dsa_config(opt.model, model.config);
    dsa.top_k = spec.top_k;
    layer.set_indexer(DsaIndexer(model.config, dsa,
                                 load_dsa_weights(model.checkpoint, model.config, dsa, opt.layer)));
  }
  layer.set_sparse(spec);
}

int run_attention(const AttentionOptions& opt) {
  if (opt.path != "naive" && opt.path != "absorbed") {
    throw Error("--path: unknown value '" + opt.path + "' (use naive or absorbed)");
  }
  if (opt.layer < 0) throw Error("--layer: must not be negative, got " + std::to_string(opt.layer));
  const DType weight_dtype = parse_precision("--weight-dtype", opt.weight_dtype);
  const DType cache_dtype = parse_cache_dtype("--cache-dtype", opt.cache_dtype);
  ModelDir model = open_model_dir(opt.model);
  Input in = read_input(opt.input, model.config);
  if (opt.prefill > in.seq) {
    throw Error("--prefill: " + std::to_string(opt.prefill) + " is larger than the input's seq " +
                std::to_string(in.seq));
  }
  MlaLayer layer(model.config, load_layer_weights(model.checkpoint, model.config, opt.layer),
                 weight_dtype);
  if (!opt.sparse.empty()) configure_sparse(layer, opt, model);
  std::vector<float> y(static_cast<size_t>(in.batch * in.seq * model.config.out_size()));
  const int64_t prefill = opt.prefill < 0 ? in.seq : opt.prefill;
  if (cache_dtype != DType::kF32 || layer.sparse().kind == SparseKind::kDsa) {
    run_with_pool(layer, in, prefill,
                  opt.path == "absorbed" ? AttentionPath::kAbsorbed : AttentionPath::kNaive,
                  cache_dtype, y);
  } else if (opt.path == "absorbed") {
    run_with_cache<LatentCache>(layer, in, prefill, y);
  } else {
    run_with_cache<NaiveKvCache>(layer, in, prefill, y);
  }
  SafetensorsWriter writer;
  writer.add("y", {in.batch, in.seq, model.config.out_size()}, y, DType::kF32);
  writer.set_metadata("path", opt.path);
  writer.set_metadata("layer", std::to_string(opt.layer));
  writer.set_metadata("weight_dtype", opt.weight_dtype);
  writer.set_metadata("cache_dtype", opt.cache_dtype);
  writer.set_metadata("sparse", layer.sparse().to_string());
  writer.write(opt.output);
  return 0;
}

}  // namespace

Runner add_attention_command(CLI::App& app) {
  auto opt = std::make_shared<AttentionOptions>();
  CLI::App* cmd =
      app.add_subcommand("attention", "Run one MLA layer of a checkpoint over x; write y");
  add_threads_option(cmd);
  cmd->add_option("--model", opt->model, "Folder with config.json and the safetensors checkpoint")
      ->required();
  cmd->add_option("--layer", opt->layer, "Layer index (model.layers.L.self_attn.*)")->required();
  cmd->add_option("--input", opt->input,
                  "safetensors file with x [batch, seq, hidden], F32 or BF16")
      ->required();
  cmd->add_option("--output", opt->output, "safetensors file to write y [batch, seq, hidden] (F32)")
      ->required();
  cmd->add_option("--path", opt->path, "naive or absorbed (default absorbed)");
  cmd->add_option("--weight-dtype", opt->weight_dtype,
                  "Projection weights stored as f32 (default) or bf16; accumulation is f32");
  cmd->add_option("--cache-dtype", opt->cache_dtype,
                  "KV cache stored as f32 (default), bf16, fp8 or int8 (all but f32 go through a "
                  "paged pool; fp8/int8: absorbed path, rope part in bf16)");
  cmd->add_option("--sparse", opt->sparse,
                  "Sparse attention: window:size=W, block:size=B,local=L,global=G, topk:k=K or "
                  "dsa:k=K, each optionally with ,dense-heads=N (default dense)");
  cmd->add_option(
         "--prefill", opt->prefill,
         "Tokens to prefill at once; later tokens are decoded one at a time through the cache")
      ->check(CLI::NonNegativeNumber);
  return [opt] { return run_attention(*opt); };
}

}  // namespace mla::cli
