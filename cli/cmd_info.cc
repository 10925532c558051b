// mla info --model DIR [--layer L] [--json]: the config, the attention tensors of a layer, and the
// cache bytes per token of MLA's latent cache against the equivalent MHA cache; for a whole-model
// checkpoint (config.json names its architecture) the whole model too.
// mla info --cpu: the CPU, its instruction sets and the kernel chosen for each family.
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "commands.h"
#include "kernel_report.h"
#include "mla/error.h"
#include "mla/model.h"
#include "mla/weights.h"
#include "model_dir.h"

namespace mla::cli {
namespace {

struct InfoOptions {
  std::string model;
  int64_t layer = 0;
  bool json = false;
  bool cpu = false;
};

struct DtypeTotals {
  int64_t tensors = 0, parameters = 0, bytes = 0;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The whole model: layers by kind, experts, parameters and bytes by dtype (as stored), active
// parameters per token, cache bytes per token for all layers. Printed after the layer view, or
// alone as JSON.
nlohmann::json describe_model(const DeepseekConfig& c, const CheckpointDir& ck) {
  const ModelCounts n = count_model(c);
  std::map<std::string, DtypeTotals> by_dtype;
  for (const std::string& name : ck.names()) {
    const TensorInfo& info = ck.file_for(name).info(name);
    DtypeTotals& t = by_dtype[std::string(dtype_name(info.dtype))];
    t.tensors += 1;
    t.parameters += info.numel();
    t.bytes += static_cast<int64_t>(info.end - info.begin);
  }
  nlohmann::json j;
  j["architecture"] = c.architecture;
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.attention.hidden_size;
  j["layers"] = {{"total", c.num_layers},
                 {"dense", n.dense_layers},
                 {"moe", n.moe_layers},
                 {"dsa", c.dsa},
                 {"mtp_skipped", c.num_nextn_predict_layers}};
  const RouterConfig& r = c.router;
  j["experts"] = {{"routed", r.num_experts},
                  {"per_token", r.top_k},
                  {"shared", c.n_shared_experts},
                  {"width", c.moe_intermediate_size},
                  {"scoring_func", enum_name(r.scoring)},
                  {"topk_method", enum_name(r.method)},
                  {"n_group", r.n_group},
                  {"topk_group", r.topk_group},
                  {"norm_topk_prob", r.norm_topk_prob},
                  {"routed_scaling_factor", r.routed_scaling_factor}};
  j["dense_intermediate_size"] = c.intermediate_size;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["parameters"] = n.parameters;
  j["active_parameters_per_token"] = n.active_parameters;
  for (const auto& [dtype, t] : by_dtype) {
    j["checkpoint"][dtype] = {
        {"tensors", t.tensors}, {"parameters", t.parameters}, {"bytes", t.bytes}};
  }
  j["cache_numbers_per_token"] = n.cache_numbers_per_token;
  j["cache_bytes_per_token"] = {{"bf16", 2 * n.cache_numbers_per_token},
                                {"f32", 4 * n.cache_numbers_per_token}};
  return j;
}

void print_model(const nlohmann::json& j) {
  const auto num = [](const nlohmann::json& v) { return static_cast<long long>(v.get<int64_t>()); };
  const auto billions = [](const nlohmann::json& v) { return v.get<double>() / 1e9; };
  std::printf("\nwhole model: %s (model_type %s)\n", j["architecture"].get<std::string>().c_str(),
              j["model_type"].get<std::string>().c_str());
  const auto& l = j["layers"];
  std::printf("  layers: %lld (%lld dense MLP, %lld MoE%s); MTP layers skipped: %lld\n",
              num(l["total"]), num(l["dense"]), num(l["moe"]),
              l["dsa"].get<bool>() ? ", all with the DSA indexer" : "", num(l["mtp_skipped"]));
  const auto& e = j["experts"];
  if (e["routed"].get<int64_t>() > 0) {
    std::printf(
        "  experts: %lld routed (%lld per token, %s, %s, %lld groups keep %lld, %s, scale %g),"
        " %lld shared, width %lld\n",
        num(e["routed"]), num(e["per_token"]), e["scoring_func"].get<std::string>().c_str(),
        e["topk_method"].get<std::string>().c_str(), num(e["n_group"]), num(e["topk_group"]),
        e["norm_topk_prob"].get<bool>() ? "renormalised" : "not renormalised",
        e["routed_scaling_factor"].get<double>(), num(e["shared"]), num(e["width"]));
  }
  std::printf("  parameters: %lld = %.3f B (active per token: %lld = %.3f B)\n",
              num(j["parameters"]), billions(j["parameters"]),
              num(j["active_parameters_per_token"]), billions(j["active_parameters_per_token"]));
  std::printf("  checkpoint by dtype:\n");
  for (const auto& [dtype, t] : j["checkpoint"].items()) {
    std::printf("    %-8s %6lld tensors %16lld parameters %16lld bytes\n", dtype.c_str(),
                num(t["tensors"]), num(t["parameters"]), num(t["bytes"]));
  }
  std::printf("  cache per token, all layers: %lld numbers = %lld bytes bf16, %lld bytes f32\n",
              num(j["cache_numbers_per_token"]), num(j["cache_bytes_per_token"]["bf16"]),
              num(j["cache_bytes_per_token"]["f32"]));
}

int run_info(const InfoOptions& opt) {
  if (opt.cpu) {
    print_cpu_report(stdout);
    if (opt.model.empty()) return 0;
    std::printf("\n");
  }
  if (opt.model.empty()) throw Error("info: give --model DIR or --cpu");
  ModelDir model = open_model_dir(opt.model);
  const MlaConfig& c = model.config;
  const std::string config_path = opt.model + "/config.json";
  const std::string text = read_text(config_path);
  const bool whole = is_whole_model_config_json(text);
  if (opt.json) {
    if (!whole)
      throw Error(config_path + ": architectures: missing (--json describes whole models)");
    std::printf(
        "%s\n",
        describe_model(parse_deepseek_config(text, config_path), model.checkpoint).dump(2).c_str());
    return 0;
  }
  std::printf("model: %s\n\nconfig:\n", opt.model.c_str());
  std::printf("%s", c.to_string().c_str());

  const std::string prefix = layer_prefix(opt.layer);
  std::printf("\nattention tensors of layer %lld:\n", static_cast<long long>(opt.layer));
  int found = 0;
  for (const std::string& name : model.checkpoint.names()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const SafetensorsFile& file = model.checkpoint.file_for(name);
    const TensorInfo& info = file.info(name);
    std::printf("  %-60s %-8s %s\n", name.c_str(), std::string(dtype_name(info.dtype)).c_str(),
                shape_to_string(info.shape).c_str());
    ++found;
  }
  if (found == 0) std::printf("  (none: no tensor name starts with %s)\n", prefix.c_str());

  const int64_t mla_numbers = c.latent_cache_numbers_per_token();
  const int64_t mha_numbers = c.mha_cache_numbers_per_token();
  std::printf("\ncache per token per layer (2-byte numbers):\n");
  std::printf("  MLA latent cache: %lld numbers = %lld bytes\n",
              static_cast<long long>(mla_numbers), static_cast<long long>(2 * mla_numbers));
  std::printf("  MHA (naive) cache: %lld numbers = %lld bytes\n",
              static_cast<long long>(mha_numbers), static_cast<long long>(2 * mha_numbers));
  std::printf("  ratio MHA / MLA: %.1fx\n",
              static_cast<double>(mha_numbers) / static_cast<double>(mla_numbers));
  if (whole)
    print_model(describe_model(parse_deepseek_config(text, config_path), model.checkpoint));
  return 0;
}

}  // namespace

Runner add_info_command(CLI::App& app) {
  auto opt = std::make_shared<InfoOptions>();
  CLI::App* cmd =
      app.add_subcommand("info", "Show a model's config, attention tensors and cache sizes");
  cmd->add_option("--model", opt->model, "Folder with config.json and the safetensors checkpoint");
  cmd->add_flag("--cpu", opt->cpu,
                "Show the CPU and the kernel chosen (by measurement) per family");
  cmd->add_option("--layer", opt->layer, "Layer whose tensors to list (default 0)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", opt->json, "Describe the whole model as JSON (whole-model checkpoints)");
  return [opt] { return run_info(*opt); };
}

}  // namespace mla::cli
