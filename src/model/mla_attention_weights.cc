// MlaLayer::attention_weights: the probabilities a prefill computes, made visible
// (LatentAttention's need_weights). The kernels never materialise them (online softmax), so they
// are recomputed here from the same absorbed queries and latent rows; this is for inspection, not
// speed.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/layer.h"
#include "model/layer_workspace.h"

namespace mla {

std::vector<float> MlaLayer::attention_weights(std::span<const float> x, int64_t batch, int64_t seq,
                                               int64_t start_position) {
  if (batch < 1 || seq < 1) {
    throw Error("attention_weights: batch and seq must be at least 1, got " +
                std::to_string(batch) + " and " + std::to_string(seq));
  }
  if (start_position < 0) {
    throw Error("attention_weights: start_position must not be negative, got " +
                std::to_string(start_position));
  }
  const MlaConfig& c = config_;
  const int64_t h = c.num_heads, row = c.latent_dim();
  // The (B, H, S, S) result must stay addressable; 2^34 floats is far beyond any useful call.
  // Divisions, not products, so that no bound check itself can overflow.
  if (seq > (int64_t{1} << 17) || batch > (int64_t{1} << 34) / (h * seq * seq)) {
    throw Error("attention_weights: batch x heads x seq x seq is too large");
  }
  if (x.size() != static_cast<size_t>(batch * seq * c.hidden_size)) {
    throw Error(
        "attention_weights: x has " + std::to_string(x.size()) +
        " values, expected batch x seq x hidden = " + std::to_string(batch * seq * c.hidden_size));
  }
  const int64_t n = batch * seq;
  set_uniform_positions(batch, seq, start_position);
  project_inputs(x.data(), n);
  absorb_queries(n);
  const detail::Workspace& ws = *ws_;
  const double scale = c.softmax_scale();
  std::vector<float> probs(static_cast<size_t>(batch * h * seq * seq), 0.0f);
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t head = 0; head < h; ++head) {
      std::vector<double> scores(static_cast<size_t>(seq));
      for (int64_t i = 0; i < seq; ++i) {
        // Score of query i against key j: q~ . [c_kv ; k_pe], the absorbed form of q_h . k_h.
        const float* q = ws.q_absorbed.data() + ((b * seq + i) * h + head) * row;
        double mx = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          const float* k = ws.latent.data() + (b * seq + j) * row;
          double dot = 0.0;
          for (int64_t e = 0; e < row; ++e) dot += static_cast<double>(q[e]) * k[e];
          scores[static_cast<size_t>(j)] = dot * scale;
          mx = std::max(mx, scores[static_cast<size_t>(j)]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j <= i; ++j) {
          scores[static_cast<size_t>(j)] = std::exp(scores[static_cast<size_t>(j)] - mx);
          sum += scores[static_cast<size_t>(j)];
        }
        float* out = probs.data() + ((b * h + head) * seq + i) * seq;
        for (int64_t j = 0; j <= i; ++j)
          out[j] = static_cast<float>(scores[static_cast<size_t>(j)] / sum);
      }
    }
  }
  return probs;
}

}  // namespace mla
