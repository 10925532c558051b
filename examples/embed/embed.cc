// One MLA layer from the installed library: a prompt is prefilled into the latent cache, then two
// tokens are decoded one at a time. Their outputs must equal a one-shot causal prefill of all
// the tokens (the cache changes how the work is done, not the result). Prints the version, the
// cache size and the agreement; exits 1 if they disagree.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "mla/config.h"
#include "mla/kv_cache.h"
#include "mla/layer.h"
#include "mla/version.h"
#include "mla/weights.h"

int main() {
  const mla::MlaConfig config = mla::preset_config("tiny");
  mla::MlaLayer layer(config, mla::MlaWeights::random(config, 1));
  const int64_t d = config.hidden_size, prompt = 6, decode = 2, total = prompt + decode;

  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(total * d));
  for (float& v : x) v = normal(rng);

  // The reference: all tokens at once, no cache.
  std::vector<float> full(x.size());
  layer.prefill(x, 1, total, full, mla::AttentionPath::kAbsorbed);

  // Prefill the prompt into the cache, then decode one token per step.
  mla::LatentCache cache(config, 1, total);
  std::vector<float> y(x.size());
  layer.forward(std::span(x).first(prompt * d), 1, prompt, cache, std::span(y).first(prompt * d));
  for (int64_t t = prompt; t < total; ++t) {
    layer.forward(std::span(x).subspan(t * d, d), 1, 1, cache, std::span(y).subspan(t * d, d));
  }

  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(y[i] - full[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(full[i])));
  }
  const double rel = diff / scale;
  std::printf("mla %s: tiny layer, %lld prompt + %lld decoded tokens, cache %lld bytes per token\n",
              MLA_VERSION, static_cast<long long>(prompt), static_cast<long long>(decode),
              static_cast<long long>(cache.bytes_per_token()));
  std::printf("prefill + decode vs one-shot prefill: max relative difference %.2e\n", rel);
  if (!(rel < 1e-5)) {
    std::printf("embed: FAILED\n");
    return 1;
  }
  std::printf("embed: OK\n");
  return 0;
}
