#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/sampler.h"

namespace specula {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};

TEST(Sampler, GreedyIsArgmaxFirstOnTies) {
  Sampler s(SamplerConfig{});
  Rng rng(1);
  EXPECT_EQ(s.sample(kLogits, {}, rng), 1);
  std::vector<float> tie = {0.f, 5.f, 5.f};
  EXPECT_EQ(s.sample(tie, {}, rng), 1);
}

TEST(Sampler, TemperatureDistributionIsSoftmax) {
  SamplerConfig c;
  c.temperature = 2.0f;
  Sampler s(c);
  std::vector<float> p;
  s.distribution(kLogits, {}, p);
  double z = 0;
  for (float l : kLogits) z += std::exp(l / 2.0);
  for (size_t i = 0; i < kLogits.size(); ++i) EXPECT_NEAR(p[i], std::exp(kLogits[i] / 2.0) / z, 1e-6);
}

TEST(Sampler, TopKTopPMinP) {
  SamplerConfig c;
  c.temperature = 1.0f;
  c.top_k = 2;
  std::vector<float> p;
  Sampler(c).distribution(kLogits, {}, p);
  EXPECT_GT(p[1], 0);
  EXPECT_GT(p[4], 0);
  EXPECT_EQ(p[0] + p[2] + p[3], 0);
  EXPECT_NEAR(p[1] + p[4], 1.0, 1e-6);

  c.top_k = 0;
  c.top_p = 0.5f;  // softmax: p1=.35 p4=.32 ... -> keeps 1 and 4
  Sampler(c).distribution(kLogits, {}, p);
  EXPECT_GT(p[1], 0);
  EXPECT_GT(p[4], 0);
  EXPECT_EQ(p[2], 0);

  c.top_p = 1.0f;
  c.min_p = 0.5f;  // keep tokens with prob >= 0.5 * max: 1 (1.0), 4 (0.905), 2 (0.368 -> dropped)
  Sampler(c).distribution(kLogits, {}, p);
  EXPECT_GT(p[4], 0);
  EXPECT_EQ(p[2], 0);
}

TEST(Sampler, RepetitionPenalty) {
  SamplerConfig c;
  c.repetition_penalty = 2.0f;
  Sampler s(c);
  Rng rng(0);
  const std::vector<Token> hist = {1};
  // logit 3.0 -> 1.5, so token 4 (2.9) wins
  EXPECT_EQ(s.sample(kLogits, hist, rng), 4);
}

TEST(Sampler, SeededAndDeterministic) {
  SamplerConfig c;
  c.temperature = 1.0f;
  Sampler s(c);
  Rng a(42), b(42), d(43);
  std::vector<Token> x, y, z;
  for (int i = 0; i < 50; ++i) {
    x.push_back(s.sample(kLogits, {}, a));
    y.push_back(s.sample(kLogits, {}, b));
    z.push_back(s.sample(kLogits, {}, d));
  }
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

TEST(Sampler, EmpiricalFrequenciesMatchDistribution) {
  // Chi-square goodness of fit with 4 degrees of freedom; 99.9% critical value 18.47.
  SamplerConfig c;
  c.temperature = 0.8f;
  Sampler s(c);
  std::vector<float> p;
  s.distribution(kLogits, {}, p);
  Rng rng(7);
  const int n = 40000;
  std::vector<int> counts(kLogits.size(), 0);
  for (int i = 0; i < n; ++i) ++counts[static_cast<size_t>(s.sample(kLogits, {}, rng))];
  double chi2 = 0;
  for (size_t i = 0; i < p.size(); ++i) chi2 += std::pow(counts[i] - n * p[i], 2) / (n * p[i]);
  EXPECT_LT(chi2, 18.47);
}

TEST(Sampler, InvalidValuesAreRejectedWithTheirName) {
  auto expect_err = [](SamplerConfig c, const char* word) {
    try {
      c.validate();
      FAIL() << "expected an error mentioning " << word;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  SamplerConfig c;
  c.temperature = -1;
  expect_err(c, "temperature");
  c = {};
  c.top_p = 0;
  expect_err(c, "top-p");
  c = {};
  c.top_p = 1.5f;
  expect_err(c, "top-p");
  c = {};
  c.top_k = -3;
  expect_err(c, "top-k");
  c = {};
  c.min_p = 1.0f;
  expect_err(c, "min-p");
  c = {};
  c.repetition_penalty = 0;
  expect_err(c, "repetition penalty");
  c = {};
  c.temperature = NAN;
  expect_err(c, "temperature");
}

}  // namespace
}  // namespace specula
