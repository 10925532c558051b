// The DeepSeekMoE router on hand-made logits: softmax/greedy, group-limited greedy (group score
// = max), noaux_tc (group score = sum of the two best, with the bias; weights without it),
// renormalisation and scaling, and ties (either tied expert may win: only the set is checked).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "mla/model.h"

namespace mla {
namespace {

struct Routed {
  std::vector<int32_t> experts;
  std::vector<float> weights;
};

Routed route(const RouterConfig& cfg, const std::vector<float>& logits,
             const std::vector<float>& bias = {}) {
  const int64_t n = static_cast<int64_t>(logits.size()) / cfg.num_experts;
  Routed r{std::vector<int32_t>(static_cast<size_t>(n * cfg.top_k)),
           std::vector<float>(static_cast<size_t>(n * cfg.top_k))};
  std::vector<float> scratch(static_cast<size_t>(2 * cfg.num_experts));
  route_tokens(cfg, logits.data(), bias.empty() ? nullptr : bias.data(), n, r.experts.data(),
               r.weights.data(), scratch.data());
  return r;
}

std::vector<int32_t> sorted(std::vector<int32_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Router, SoftmaxGreedyTakesTheLargestScoresUnnormalised) {
  RouterConfig cfg{6, 2, ScoringFunc::kSoftmax, TopkMethod::kGreedy, 1, 1, false, 1.0};
  const std::vector<float> z = {0.1f, 2.0f, -1.0f, 1.5f, 0.0f, 0.3f};
  const Routed r = route(cfg, z);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{1, 3}));
  double sum = 0;
  for (float v : z) sum += std::exp(v);
  EXPECT_NEAR(r.weights[0], std::exp(2.0) / sum, 1e-6);
  EXPECT_NEAR(r.weights[1], std::exp(1.5) / sum, 1e-6);
}

TEST(Router, GroupLimitedGreedyKeepsTheGroupsWithTheBestMaximum) {
  // Groups {0,1} {2,3} {4,5}: maxima 3.0, 2.9, 2.8. One group kept: experts 0 and 1, although
  // experts 2 and 4 score above expert 1.
  RouterConfig cfg{6, 2, ScoringFunc::kSoftmax, TopkMethod::kGroupLimitedGreedy, 3, 1, false, 16.0};
  const std::vector<float> z = {3.0f, -2.0f, 2.9f, 2.85f, 2.8f, 2.7f};
  const Routed r = route(cfg, z);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{0, 1}));
  double sum = 0;
  for (float v : z) sum += std::exp(v);
  EXPECT_NEAR(r.weights[1], 16.0 * std::exp(-2.0) / sum, 1e-6);  // scaled, not renormalised
  cfg.method = TopkMethod::kGreedy;                              // greedy ignores the groups
  EXPECT_EQ(route(cfg, z).experts, (std::vector<int32_t>{0, 2}));
}

TEST(Router, NoauxTcScoresGroupsByTheirTwoBestWithTheBiasAndWeighsWithout) {
  // Sigmoid scores; groups {0,1} {2,3}. By maximum group 0 would win (expert 0), by the sum of
  // its two best (with the bias) group 1 does. Bias lifts expert 3 above expert 2.
  RouterConfig cfg{4, 1, ScoringFunc::kSigmoid, TopkMethod::kNoauxTc, 2, 1, true, 2.5};
  const std::vector<float> z = {3.0f, -3.0f, 1.0f, 0.9f};
  const std::vector<float> bias = {0.0f, 0.0f, 0.0f, 0.1f};
  const Routed r = route(cfg, z, bias);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{3}));
  EXPECT_NEAR(r.weights[0], 2.5, 1e-6);  // one expert renormalised to 1, times the scale
  cfg.top_k = 2;
  const Routed two = route(cfg, z, bias);
  EXPECT_EQ(two.experts, (std::vector<int32_t>{3, 2}));
  const double s2 = 1 / (1 + std::exp(-1.0)), s3 = 1 / (1 + std::exp(-0.9));
  EXPECT_NEAR(two.weights[0], 2.5 * s3 / (s2 + s3), 1e-6);  // original scores, bias left out
  EXPECT_NEAR(two.weights[1], 2.5 * s2 / (s2 + s3), 1e-6);
}

TEST(Router, TiesChooseOneOfTheTiedExpertsWithTheirWeight) {
  RouterConfig cfg{5, 2, ScoringFunc::kSigmoid, TopkMethod::kNoauxTc, 1, 1, false, 1.0};
  const std::vector<float> z = {0.5f, 1.0f, 0.5f, -1.0f, 0.5f};
  const Routed r = route(cfg, z, std::vector<float>(5, 0.0f));
  EXPECT_EQ(r.experts[0], 1);
  EXPECT_TRUE(r.experts[1] == 0 || r.experts[1] == 2 || r.experts[1] == 4) << r.experts[1];
  EXPECT_NEAR(r.weights[1], 1 / (1 + std::exp(-0.5)), 1e-6);
  // Tied groups: either may be kept, the experts come from one group only.
  RouterConfig g{4, 2, ScoringFunc::kSoftmax, TopkMethod::kGroupLimitedGreedy, 2, 1, false, 1.0};
  const Routed t = route(g, {1.0f, 0.0f, 1.0f, 0.0f});
  const std::vector<int32_t> set = sorted(t.experts);
  EXPECT_TRUE(set == (std::vector<int32_t>{0, 1}) || set == (std::vector<int32_t>{2, 3}));
}

TEST(Router, SeveralTokensAreRoutedIndependently) {
  RouterConfig cfg{4, 1, ScoringFunc::kSoftmax, TopkMethod::kGreedy, 1, 1, true, 1.0};
  const Routed r = route(cfg, {0, 0, 0, 5, 5, 0, 0, 0, 0, 0, 7, 0});
  EXPECT_EQ(r.experts, (std::vector<int32_t>{3, 0, 2}));
  for (float w : r.weights) EXPECT_FLOAT_EQ(w, 1.0f);  // renormalised single choice
}

}  // namespace
}  // namespace mla
