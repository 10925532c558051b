#include "bench_variants.h"

#include "mla/baseline.h"
#include "mla/error.h"
#include "mla/layer.h"

namespace mla::cli {

BenchVariant make_bench_variant(const std::string& name, const MlaConfig& config, uint64_t seed) {
  BenchVariant v;
  v.name = name;
  v.hidden_size = config.hidden_size;
  if (name == "mla" || name == "mla-naive") {
    const AttentionPath path = name == "mla" ? AttentionPath::kAbsorbed : AttentionPath::kNaive;
    auto layer = std::make_shared<MlaLayer>(config, MlaWeights::random(config, seed));
    v.token_width = layer->paged_token_width(path);
    v.step = [layer, path](auto x, auto seqs, auto counts, PagedKvPool& pool, auto y) {
      layer->forward(x, seqs, counts, pool, path, y);
    };
    v.layer = layer;
    return v;
  }
  int64_t groups = 0;
  if (name == "mha") {
    groups = config.num_heads;
  } else if (name == "mqa") {
    groups = 1;
  } else if (name.rfind("gqa", 0) == 0 && name.size() > 3 &&
             name.find_first_not_of("0123456789", 3) == std::string::npos && name.size() < 9) {
    groups = std::stoll(name.substr(3));
  } else {
    throw Error("--variants: unknown variant '" + name +
                "' (use mla, mla-naive, mha, gqa<N>, mqa)");
  }
  if (groups < 1 || config.num_heads % groups != 0) {
    throw Error("--variants: " + name + ": " + std::to_string(groups) + " groups do not divide " +
                std::to_string(config.num_heads) + " heads");
  }
  const GqaConfig gc = GqaConfig::like_mla(config, groups);
  auto layer = std::make_shared<GqaLayer>(gc, GqaWeights::random(gc, seed));
  v.token_width = layer->paged_token_width();
  v.step = [layer](auto x, auto seqs, auto counts, PagedKvPool& pool, auto y) {
    layer->forward(x, seqs, counts, pool, y);
  };
  v.layer = layer;
  return v;
}

}  // namespace mla::cli
