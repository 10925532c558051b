// mla info --model DIR [--layer L]: the config, the attention tensors of a layer, and the cache
// bytes per token of MLA's latent cache against the equivalent MHA cache.
// mla info --cpu: the CPU, its instruction sets and the kernel chosen for each family.
#include <cstdio>
#include <string>

#include "commands.h"
#include "kernel_report.h"
#include "mla/error.h"
#include "mla/weights.h"
#include "model_dir.h"

namespace mla::cli {
namespace {

struct InfoOptions {
  std::string model;
  int64_t layer = 0;
  bool cpu = false;
};

int run_info(const InfoOptions& opt) {
  if (opt.cpu) {
    print_cpu_report(stdout);
    if (opt.model.empty()) return 0;
    std::printf("\n");
  }
  if (opt.model.empty()) throw Error("info: give --model DIR or --cpu");
  ModelDir model = open_model_dir(opt.model);
  const MlaConfig& c = model.config;
  std::printf("model: %s\n\nconfig:\n", opt.model.c_str());
  std::string text = c.to_string();
  std::printf("%s", text.c_str());

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
  return [opt] { return run_info(*opt); };
}

}  // namespace mla::cli
