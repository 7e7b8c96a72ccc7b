// Acceptance item 2b: on SmolLM2-135M at temperature 1 (top-k 4, so the first three tokens have at most
// 64 outcomes), the first three generated tokens -- the second and third come from one speculative step
// with k = 2 -- follow the target's exact joint distribution. The exact distribution is computed from
// the engine's own logits (p(y1) p(y2|y1) p(y3|y1,y2), 1 + 4 + 16 forward passes): it is what plain
// decoding samples from, and plain generate() is checked against it too. Test: chi-square goodness of fit
// at significance 1e-4 (cells with expected count < 5 pooled), N = 3000 samples with speculation (an
// early-exit self-draft after 4 of 30 layers, whose q differs a lot from p) and N = 1000 without.
// A deliberately wrong verifier (on rejection it resamples from p instead of the residual) must fail.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <map>

#include "core/generator.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "draft/registry.h"
#include "tests/test_util.h"
#include "verify/speculative.h"

namespace specula {
namespace {

double chi2_crit(int64_t df) {  // upper 1e-4 quantile (Wilson-Hilferty)
  const double z = 3.719, d = static_cast<double>(df);
  const double t = 1.0 - 2.0 / (9.0 * d) + z * std::sqrt(2.0 / (9.0 * d));
  return d * t * t * t;
}

// Same bug as in spec_sampling_test.cpp, along a chain.
class WrongChainVerifier : public SpeculativeSamplingVerifier {
 public:
  void accept(const Draft& draft, const Logits& logits, std::span<const Token> history, const Sampler& sampler, Rng& rng,
              Accepted& out) override {
    out.clear();
    hist_.assign(history.begin(), history.end());
    for (int32_t i = 0;; ++i) {
      sampler.distribution(logits.row(i), hist_, p_);
      if (i >= draft.size()) {
        out.tokens.push_back(Sampler::sample_from(p_, rng));
        return;
      }
      const Token x = draft.nodes[static_cast<size_t>(i)].token;
      if (!(rng.uniform() * draft.q_of_token(i) < p_[static_cast<size_t>(x)])) {
        out.tokens.push_back(Sampler::sample_from(p_, rng));  // BUG: should be the residual
        return;
      }
      out.tokens.push_back(x);
      out.path.push_back(i);
      ++out.n_accepted;
      hist_.push_back(x);
    }
  }
};

using Key = std::array<Token, 3>;

double chi2_vs(const std::map<Key, double>& exact, const std::map<Key, int64_t>& counts, int64_t n, int64_t* df) {
  // Pool cells with expected < 5 into one.
  double chi2 = 0, pool_e = 0, pool_o = 0;
  int64_t cells = 0, seen = 0;
  for (const auto& [k, p] : exact) {
    const double e = p * static_cast<double>(n);
    auto it = counts.find(k);
    const double o = it == counts.end() ? 0 : static_cast<double>(it->second);
    seen += static_cast<int64_t>(o);
    if (e < 5) {
      pool_e += e;
      pool_o += o;
      continue;
    }
    chi2 += (o - e) * (o - e) / e;
    ++cells;
  }
  EXPECT_EQ(seen, n) << "outcomes outside the exact support";
  if (pool_e > 0) {
    chi2 += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
    ++cells;
  }
  *df = cells - 1;
  return chi2;
}

TEST(SpecSamplingModelSlow, FirstTokensFollowTargetDistribution) {
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 not installed";
  auto model = Model::load(path);
  const std::vector<Token> prompt = model->tokenizer().encode("My favourite animal is the", true, false);
  SamplerConfig scfg;
  scfg.temperature = 1.f;
  scfg.top_k = 4;
  const Sampler sampler(scfg);
  const int64_t ctx = static_cast<int64_t>(prompt.size()) + 4;

  // Exact joint distribution of (y1, y2, y3).
  KvCache base = model->make_cache(ctx, KvDType::F16);
  Logits last;
  prefill(*model, prompt, base, 256, last);
  std::map<Key, double> exact;
  std::vector<float> p1, p2, p3;
  std::vector<Token> hist = prompt;
  sampler.distribution(last.row(0), hist, p1);
  Logits l2, l3;
  for (Token a = 0; a < static_cast<Token>(p1.size()); ++a) {
    if (p1[static_cast<size_t>(a)] == 0) continue;
    KvCache c1 = base;
    Pos pa = static_cast<Pos>(prompt.size());
    model->forward(std::span<const Token>(&a, 1), std::span<const Pos>(&pa, 1), c1, nullptr, l2, {LogitsFor::Last});
    hist.push_back(a);
    sampler.distribution(l2.row(0), hist, p2);
    for (Token b = 0; b < static_cast<Token>(p2.size()); ++b) {
      if (p2[static_cast<size_t>(b)] == 0) continue;
      KvCache c2 = c1;
      Pos pb = pa + 1;
      model->forward(std::span<const Token>(&b, 1), std::span<const Pos>(&pb, 1), c2, nullptr, l3, {LogitsFor::Last});
      hist.push_back(b);
      sampler.distribution(l3.row(0), hist, p3);
      hist.pop_back();
      for (Token c = 0; c < static_cast<Token>(p3.size()); ++c)
        if (p3[static_cast<size_t>(c)] > 0)
          exact[{a, b, c}] = static_cast<double>(p1[static_cast<size_t>(a)]) * p2[static_cast<size_t>(b)] * p3[static_cast<size_t>(c)];
    }
    hist.pop_back();
  }
  ASSERT_LE(exact.size(), 64u);

  auto draft = make_drafter("early-exit:layers=4", *model, DrafterOptions{});
  const Prefilled pre{&base, &last};
  auto sample_spec = [&](Verifier& v, int64_t n, uint64_t seed, SpecStats* agg) {
    std::map<Key, int64_t> counts;
    Rng rng(seed);
    SpecConfig sc;
    sc.gen.max_tokens = 4;  // after y1, k = min(2, 4 - 1 - 1) = 2: y2, y3 come from one speculative step
    sc.gen.stop_at_eog = false;
    sc.k = 2;
    for (int64_t i = 0; i < n; ++i) {
      const SpecResult r = speculative_generate(*model, *draft, v, prompt, sc, sampler, rng, {}, &pre);
      counts[{r.tokens[0], r.tokens[1], r.tokens[2]}]++;
      if (agg) agg->add(r.stats);
    }
    return counts;
  };

  const int64_t n_spec = 3000, n_plain = 1000;
  SpeculativeSamplingVerifier good;
  SpecStats st;
  int64_t df = 0;
  const double chi_spec = chi2_vs(exact, sample_spec(good, n_spec, 1, &st), n_spec, &df);
  std::printf("[spec-sampling-model] speculative: chi2 %.1f (df %lld, critical %.1f), acceptance rate %.2f over %lld drafted\n",
              chi_spec, static_cast<long long>(df), chi2_crit(df), st.acceptance_rate(), static_cast<long long>(st.drafted));
  EXPECT_LT(chi_spec, chi2_crit(df));
  EXPECT_LT(st.acceptance_rate(), 0.9) << "the draft must be rejected often for the test to bite";

  std::map<Key, int64_t> plain_counts;
  Rng rng(2);
  GenerateConfig gc;
  gc.max_tokens = 3;
  gc.stop_at_eog = false;
  for (int64_t i = 0; i < n_plain; ++i) {
    const GenerateResult r = generate(*model, prompt, gc, sampler, rng);
    plain_counts[{r.tokens[0], r.tokens[1], r.tokens[2]}]++;
  }
  const double chi_plain = chi2_vs(exact, plain_counts, n_plain, &df);
  std::printf("[spec-sampling-model] plain: chi2 %.1f (df %lld, critical %.1f)\n", chi_plain, static_cast<long long>(df), chi2_crit(df));
  EXPECT_LT(chi_plain, chi2_crit(df));

  WrongChainVerifier wrong;
  const double chi_wrong = chi2_vs(exact, sample_spec(wrong, n_spec, 3, nullptr), n_spec, &df);
  std::printf("[spec-sampling-model] wrong verifier: chi2 %.1f (df %lld, critical %.1f)\n", chi_wrong, static_cast<long long>(df),
              chi2_crit(df));
  EXPECT_GT(chi_wrong, chi2_crit(df)) << "the biased verifier was not detected";
}

}  // namespace
}  // namespace specula
