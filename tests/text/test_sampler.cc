// mla::Sampler against an independent transcription of its specification (include/mla/sampler.h):
// the kept sets of top-k, top-p and min-p exactly, the repeat penalty's logits, the draw's
// distribution (chi-square over many draws), greedy ties, seeding, and every validation message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "mla/error.h"
#include "mla/sampler.h"
#include "test_util.h"

namespace mla {
namespace {

// The specification, written out plainly: penalised logits, tempered softmax over everything,
// then each filter over the previous survivors, renormalising each time. Returns id -> prob.
std::map<int32_t, double> reference(std::vector<float> logits, const SamplerParams& p,
                                    const std::vector<int32_t>& history) {
  std::set<int32_t> distinct(history.end() - std::min<int64_t>(p.repeat_last_n, history.size()),
                             history.end());
  for (int32_t t : distinct) {
    float& x = logits[static_cast<size_t>(t)];
    x = x > 0 ? x / static_cast<float>(p.repeat_penalty) : x * static_cast<float>(p.repeat_penalty);
  }
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::vector<double> prob(logits.size());
  const double m = logits[static_cast<size_t>(ids[0])];
  for (size_t k = 0; k < logits.size(); ++k) prob[k] = std::exp((logits[k] - m) / p.temperature);
  auto normalise = [&](std::vector<int32_t>& kept) {
    double z = 0;
    for (int32_t id : kept) z += prob[static_cast<size_t>(id)];
    std::map<int32_t, double> out;
    for (int32_t id : kept) out[id] = prob[static_cast<size_t>(id)] / z;
    return out;
  };
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < ids.size())
    ids.resize(static_cast<size_t>(p.top_k));
  std::map<int32_t, double> norm = normalise(ids);
  if (p.top_p < 1.0) {
    double cum = 0;
    size_t keep = 0;
    while (keep < ids.size()) {
      cum += norm[ids[keep++]];
      if (cum >= p.top_p) break;
    }
    ids.resize(keep);
    norm = normalise(ids);
  }
  const double best = norm[ids[0]];
  std::vector<int32_t> kept;
  for (int32_t id : ids) {
    if (norm[id] >= p.min_p * best) kept.push_back(id);
  }
  return normalise(kept);
}

std::map<int32_t, double> observed(const Sampler& s) {
  std::map<int32_t, double> out;
  for (size_t k = 0; k < s.candidate_ids().size(); ++k)
    out[s.candidate_ids()[k]] = s.candidate_probs()[k];
  return out;
}

void expect_same(const std::map<int32_t, double>& got, const std::map<int32_t, double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [id, p] : want) {
    ASSERT_TRUE(got.count(id)) << "token " << id << " missing";
    EXPECT_NEAR(got.at(id), p, 1e-9) << "token " << id;
  }
}

TEST(Sampler, FilteredSetsAndProbabilitiesMatchTheSpecification) {
  // Distinct logits (random normals) so that every set is unambiguous; 3000 tokens so that top-p
  // crosses several of the sampler's sorting chunks.
  const std::vector<float> logits = test::random_normal(3000, 11);
  std::vector<int32_t> history = {5, 17, 5, 2999, 42, 17, 7};
  struct Case {
    double temperature;
    int64_t top_k;
    double top_p, min_p, penalty;
    int64_t last_n;
  };
  const Case cases[] = {{1.0, 0, 1.0, 0.0, 1.0, 64},    {0.7, 40, 1.0, 0.0, 1.0, 64},
                        {1.3, 0, 0.9, 0.0, 1.0, 64},    {1.0, 0, 0.5, 0.0, 1.0, 64},
                        {2.0, 0, 0.999, 0.0, 1.0, 64},  {1.0, 0, 1.0, 0.05, 1.0, 64},
                        {0.9, 100, 0.8, 0.02, 1.0, 64}, {1.0, 0, 0.95, 0.1, 1.5, 64},
                        {0.5, 3000, 0.3, 0.0, 0.7, 3},  {1.0, 1, 1.0, 0.0, 1.0, 64}};
  for (const Case& c : cases) {
    SamplerParams p;
    p.temperature = c.temperature;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.repeat_penalty = c.penalty;
    p.repeat_last_n = c.last_n;
    Sampler s(p);
    s.accept(history);
    const int32_t t = s.sample(logits);
    const std::map<int32_t, double> want = reference(logits, p, history);
    SCOPED_TRACE(testing::Message() << "T " << c.temperature << " k " << c.top_k << " p " << c.top_p
                                    << " min_p " << c.min_p << " penalty " << c.penalty);
    expect_same(observed(s), want);
    EXPECT_TRUE(want.count(t));
  }
}

TEST(Sampler, TopKAndTopPKeepExactlyTheBestTokensInOrder) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 2.0f, 2.0f, 0.0f};
  SamplerParams p;
  p.top_k = 3;
  Sampler s(p);
  s.sample(logits);
  EXPECT_EQ(std::vector<int32_t>(s.candidate_ids().begin(), s.candidate_ids().end()),
            (std::vector<int32_t>{1, 3, 4}));  // the tie 3/4 in id order
  // Probabilities e^3, e^2, e^2, ... over Z: top-p = mass of the first two exactly keeps two.
  double z = 0;
  for (float x : logits) z += std::exp(x);
  p.top_k = 0;
  p.top_p = (std::exp(3.0) + std::exp(2.0)) / z - 1e-12;
  Sampler q(p);
  q.sample(logits);
  EXPECT_EQ(std::vector<int32_t>(q.candidate_ids().begin(), q.candidate_ids().end()),
            (std::vector<int32_t>{1, 3}));
  // top_p so small that only the best token survives.
  p.top_p = 1e-6;
  Sampler r(p);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(r.sample(logits), 1);
}

TEST(Sampler, DrawsFollowTheRenormalisedFilteredDistribution) {
  const std::vector<float> logits = {1.0f, 0.2f, 2.0f, -0.5f, 1.5f, 0.9f, -3.0f, 0.0f};
  SamplerParams p;
  p.temperature = 0.8;
  p.top_k = 6;
  p.top_p = 0.93;
  p.seed = 12345;
  const std::map<int32_t, double> want = reference(logits, p, {});
  ASSERT_GE(want.size(), 4u);
  Sampler s(p);
  const int n = 40000;
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) ++counts[s.sample(logits)];
  double chi2 = 0;
  for (const auto& [id, c] : counts) {
    ASSERT_TRUE(want.count(id)) << "drew token " << id << " outside the filtered set";
  }
  for (const auto& [id, prob] : want) {
    const double expected = prob * n;
    const double d = counts[id] - expected;
    chi2 += d * d / expected;
  }
  // Degrees of freedom = |set| - 1 <= 5: P(chi2 > 30) < 2e-5 under the right distribution, while
  // sampling with the unfiltered or un-renormalised probabilities gives chi2 in the thousands.
  EXPECT_LT(chi2, 30.0) << "set size " << want.size();
}

TEST(Sampler, GreedyTakesTheLowestIdAmongEqualBestAfterThePenalty) {
  SamplerParams p;
  p.temperature = 0.0;
  EXPECT_EQ(Sampler(p).sample(std::vector<float>{1.0f, 4.0f, 2.0f, 4.0f}), 1);
  EXPECT_EQ(Sampler(p).sample(std::vector<float>{-INFINITY, -2.0f, -INFINITY}), 1);
  p.repeat_penalty = 2.0;
  Sampler s(p);
  s.accept(std::vector<int32_t>{1});
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 4.0f, 2.5f, -1.0f}), 2);  // 4 / 2 = 2 < 2.5
  EXPECT_TRUE(s.candidate_ids().empty());
}

TEST(Sampler, RepeatPenaltyDividesPositiveMultipliesNegativeOverTheLastN) {
  SamplerParams p;
  p.repeat_penalty = 2.0;
  p.repeat_last_n = 3;
  Sampler s(p);
  // Token 0 is four back: outside the window of 3. Tokens 1 and 2 are in it (2 twice: once).
  s.accept(std::vector<int32_t>{0, 2, 1, 2});
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 0.0f};
  s.sample(logits);
  const std::vector<float> penalised = {2.0f, -2.0f, 0.25f, 0.0f};
  double z = 0;
  for (float x : penalised) z += std::exp(static_cast<double>(x) - 2.0);
  const std::map<int32_t, double> got = observed(s);
  for (int32_t id = 0; id < 4; ++id)
    EXPECT_NEAR(got.at(id),
                std::exp(static_cast<double>(penalised[static_cast<size_t>(id)]) - 2.0) / z, 1e-12)
        << id;
}

TEST(Sampler, SeededSequencesReplay) {
  const std::vector<float> logits = test::random_normal(500, 5);
  SamplerParams p;
  p.top_p = 0.95;
  p.repeat_penalty = 1.1;
  p.seed = 99;
  auto run = [&](Sampler& s) {
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(logits));
    return out;
  };
  Sampler a(p), b(p);
  const std::vector<int32_t> first = run(a);
  EXPECT_EQ(first, run(b));
  a.reset(99);
  EXPECT_EQ(first, run(a));
  p.seed = 100;
  Sampler c(p);
  EXPECT_NE(first, run(c));
}

TEST(Sampler, RejectsEveryInvalidParameterWithItsName) {
  auto message = [](SamplerParams p) {
    try {
      Sampler s(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  SamplerParams p;
  p.temperature = -0.5;
  EXPECT_EQ(message(p), "sampler: temperature must be a finite number >= 0, got -0.5");
  p = {};
  p.temperature = NAN;
  EXPECT_EQ(message(p), "sampler: temperature must be a finite number >= 0, got nan");
  p = {};
  p.top_k = -1;
  EXPECT_EQ(message(p), "sampler: top_k must be >= 0, got -1");
  p = {};
  p.top_p = 0.0;
  EXPECT_EQ(message(p), "sampler: top_p must be in (0, 1], got 0");
  p.top_p = 1.5;
  EXPECT_EQ(message(p), "sampler: top_p must be in (0, 1], got 1.5");
  p = {};
  p.min_p = -0.1;
  EXPECT_EQ(message(p), "sampler: min_p must be in [0, 1], got -0.1");
  p = {};
  p.repeat_penalty = 0.0;
  EXPECT_EQ(message(p), "sampler: repeat_penalty must be a finite number > 0, got 0");
  p = {};
  p.repeat_last_n = -2;
  EXPECT_EQ(message(p), "sampler: repeat_last_n must be in [0, 1048576], got -2");

  Sampler s{SamplerParams{}};
  auto sample_error = [&](std::vector<float> logits) {
    try {
      s.sample(logits);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(sample_error({}), "sampler: no logits");
  EXPECT_EQ(sample_error({0.0f, NAN}), "sampler: logit 1 is NaN");
  EXPECT_EQ(sample_error({INFINITY, 0.0f}), "sampler: logit 0 is +inf");
  EXPECT_EQ(sample_error({-INFINITY, -INFINITY}), "sampler: every logit is -inf");
  EXPECT_THROW(s.accept(std::vector<int32_t>{-3}), Error);
  SamplerParams penalised;
  penalised.repeat_penalty = 1.2;
  Sampler t(penalised);
  t.accept(std::vector<int32_t>{7});
  try {
    t.sample(std::vector<float>{0.0f, 1.0f});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "sampler: token 7 in the history is outside the 2 logits");
  }
}

}  // namespace
}  // namespace mla
