// Losslessness of speculative sampling on synthetic distributions (acceptance item 2a), for the host
// verifier and for the CUDA backend's device walk (SampleK + SpecAcceptK, run in the host emulator).
// Each case fixes a target distribution p (the sampler's softmax of log p at temperature 1) and a draft
// scheme; 2e5 seeded trials draw the draft, run the verifier and record the emitted token(s). A
// chi-square goodness-of-fit test against p (cells with zero target probability must stay empty) at
// significance 1e-4 must pass for the real verifier and FAIL for a deliberately wrong one (which, on
// rejection, resamples from p instead of the residual max(0, p - q): the classic bug, biased towards
// the draft).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "kernels/cuda/kernels_math.h"
#include "verify/verifier.h"

namespace specula {
namespace {

constexpr int64_t kTrials = 200000;

// Upper 1e-4 quantile of chi-square with df degrees of freedom (Wilson-Hilferty approximation, within
// ~1% for df >= 3; z = 3.719 is the standard normal 1 - 1e-4 quantile).
double chi2_crit(int64_t df) {
  const double z = 3.719, d = static_cast<double>(df);
  const double t = 1.0 - 2.0 / (9.0 * d) + z * std::sqrt(2.0 / (9.0 * d));
  return d * t * t * t;
}

// The bug: on rejection resample from the unchanged p.
class WrongVerifier : public SpeculativeSamplingVerifier {
 public:
  std::string name() const override { return "wrong"; }
  void accept(const Draft& draft, const Logits& logits, std::span<const Token> history, const Sampler& sampler, Rng& rng,
              Accepted& out) override {
    out.clear();
    index_children(draft);
    sampler.distribution(logits.row(0), history, p_);
    for (int32_t c = first_child(-1); c >= 0; c = next_sibling(c)) {
      const Token x = draft.nodes[static_cast<size_t>(c)].token;
      if (rng.uniform() * draft.q_of_token(c) < p_[static_cast<size_t>(x)]) {
        out.tokens.push_back(x);
        out.path.push_back(c);
        out.n_accepted = 1;
        out.tokens.push_back(Sampler::sample_from(p_, rng));  // (bonus; not examined)
        return;
      }
    }
    out.tokens.push_back(Sampler::sample_from(p_, rng));
  }
};

// The CUDA backend's speculative-sampling acceptance, emulated: prepare() draws the uniforms and sets
// the pass options as for a device; SampleK turns each logits row into the target distribution and
// SpecAcceptK walks the draft; the verifier then takes the device's result (Logits::accept_path).
class EmulatedDeviceVerifier : public SpeculativeSamplingVerifier {
 public:
  std::string name() const override { return "device walk (emulated)"; }
  void accept(const Draft& draft, const Logits& logits, std::span<const Token> history, const Sampler& sampler, Rng& rng,
              Accepted& out) override {
    using namespace cuda;
    ForwardOptions fo;
    prepare(draft, sampler, rng, fo);
    ASSERT_NE(fo.spec_sampler, nullptr);
    const int64_t n = draft.size(), T = n + 1, V = logits.n_vocab;
    const SamplerConfig& sc = *fo.spec_sampler;
    std::vector<float> u(fo.spec_uniforms.begin(), fo.spec_uniforms.end()), p(static_cast<size_t>(T * V)), total(static_cast<size_t>(T));
    std::vector<int32_t> toks(static_cast<size_t>(T)), drafted, res(static_cast<size_t>(n + 2), -1);
    for (const auto& nd : draft.nodes) drafted.push_back(nd.token);
    SampleK dist{logits.data.data(), V, sc.temperature, sc.top_k, sc.top_p, sc.min_p, u.data(), p.data(), toks.data()};
    dist.total = total.data();
    emulate(dist, T, 1, kNt, SampleK::shm_floats(kNt));
    std::vector<float> w(static_cast<size_t>(V));
    const SpecAcceptK walk{p.data(), total.data(), V, drafted.data(), fo.draft_parents.data(), fo.spec_q_offsets.data(),
                           fo.spec_q_data.data(), u.data(), n, w.data(), res.data()};
    emulate(walk, 1, 1, kNt, SpecAcceptK::shm_floats(kNt));
    Logits dev;
    dev.n_vocab = V;
    dev.n_rows = T;
    dev.accept_next = res[1];
    dev.accept_path.assign(res.begin() + 2, res.begin() + 2 + res[0]);
    SpeculativeSamplingVerifier::accept(draft, dev, history, sampler, rng, out);
  }
  static constexpr int kNt = 4;  // several threads per block, so chunked scans and reductions are exercised
};

struct Case {
  const char* name;
  std::vector<double> p;
  // Fills a one-level draft (children of the root) for one trial.
  std::function<void(Draft&, Rng&)> draft;
};

std::vector<float> to_f(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// One child drawn from q.
std::function<void(Draft&, Rng&)> single(std::vector<double> q) {
  return [q = to_f(q)](Draft& d, Rng& rng) { d.add(Sampler::sample_from(q, rng), -1, q); };
}
// Deterministic proposal (one-hot q).
std::function<void(Draft&, Rng&)> fixed(std::vector<Token> toks) {
  return [toks](Draft& d, Rng&) {
    for (Token t : toks) d.add(t, -1);
  };
}
// b children drawn from q without replacement (child j's q = q without children 0..j-1, renormalised).
std::function<void(Draft&, Rng&)> without_replacement(std::vector<double> q, int b) {
  return [q = to_f(q), b](Draft& d, Rng& rng) {
    std::vector<float> cur = q;
    for (int j = 0; j < b; ++j) {
      const Token t = Sampler::sample_from(cur, rng);
      d.add(t, -1, cur);
      cur[static_cast<size_t>(t)] = 0;
      double s = 0;
      for (float v : cur) s += v;
      if (!(s > 0)) break;
      for (auto& v : cur) v = static_cast<float>(v / s);
    }
  };
}
// b children drawn from q independently (SpecInfer's i.i.d. multi-candidate draft).
std::function<void(Draft&, Rng&)> iid(std::vector<double> q, int b) {
  return [q = to_f(q), b](Draft& d, Rng& rng) {
    for (int j = 0; j < b; ++j) d.add(Sampler::sample_from(q, rng), -1, q);
  };
}

// Chi-square statistic of the first emitted token over kTrials; zero-probability cells must be empty.
double run_case(const Case& c, Verifier& v, int64_t* df_out, int64_t trials = kTrials) {
  const int64_t V = static_cast<int64_t>(c.p.size());
  SamplerConfig sc;
  sc.temperature = 1.f;
  Sampler sampler(sc);
  Logits logits;
  logits.n_vocab = V;
  logits.n_rows = 1 + 16;
  logits.data.assign(static_cast<size_t>(V * logits.n_rows), 0.f);
  for (int64_t r = 0; r < logits.n_rows; ++r)
    for (int64_t i = 0; i < V; ++i)
      logits.data[static_cast<size_t>(r * V + i)] = c.p[static_cast<size_t>(i)] > 0 ? static_cast<float>(std::log(c.p[static_cast<size_t>(i)])) : -INFINITY;
  Rng rng(12345);
  Draft d;
  d.n_vocab = V;
  Accepted acc;
  std::vector<int64_t> count(static_cast<size_t>(V), 0);
  const std::vector<Token> history = {0};
  for (int64_t t = 0; t < trials; ++t) {
    d.clear();
    c.draft(d, rng);
    v.accept(d, logits, history, sampler, rng, acc);
    count[static_cast<size_t>(acc.tokens[0])]++;
  }
  double chi2 = 0;
  int64_t df = -1;
  for (int64_t i = 0; i < V; ++i) {
    const double e = c.p[static_cast<size_t>(i)] * static_cast<double>(trials);
    if (e == 0) {
      EXPECT_EQ(count[static_cast<size_t>(i)], 0) << c.name << ": token " << i << " has p = 0 but was emitted";
      continue;
    }
    const double o = static_cast<double>(count[static_cast<size_t>(i)]);
    chi2 += (o - e) * (o - e) / e;
    ++df;
  }
  *df_out = df;
  return chi2;
}

std::vector<Case> cases() {
  const std::vector<double> p = {0.30, 0.20, 0.15, 0.10, 0.10, 0.08, 0.05, 0.02};
  const std::vector<double> q_other = {0.05, 0.05, 0.10, 0.30, 0.05, 0.05, 0.10, 0.30};
  return {
      {"random_p_q", p, single(q_other)},
      {"disjoint_supports", {0.4, 0.3, 0.2, 0.1, 0, 0, 0, 0}, single({0, 0, 0, 0, 0.25, 0.25, 0.25, 0.25})},
      {"q_much_larger_than_p", {0.01, 0.29, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02}, single({0.9, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01, 0.01})},
      {"q_equals_p", p, single(p)},
      {"one_hot_draft", p, fixed({3})},
      {"one_hot_draft_p_zero", {0.5, 0.5, 0, 0, 0, 0, 0, 0}, fixed({5})},
      {"tree_three_one_hot_siblings", p, fixed({7, 3, 0})},
      {"tree_without_replacement", p, without_replacement(q_other, 3)},
      {"tree_iid_candidates", p, iid(q_other, 3)},
  };
}

TEST(SpeculativeSampling, FirstTokenFollowsTargetDistribution) {
  for (const auto& c : cases()) {
    SpeculativeSamplingVerifier v;
    int64_t df = 0;
    const double chi2 = run_case(c, v, &df);
    const double crit = chi2_crit(df);
    std::printf("[spec-sampling] %-30s chi2 %.1f (df %lld, critical %.1f at 1e-4)\n", c.name, chi2, static_cast<long long>(df), crit);
    EXPECT_LT(chi2, crit) << c.name;
  }
}

TEST(SpeculativeSampling, DeviceWalkFollowsTargetDistribution) {
  for (const auto& c : cases()) {
    EmulatedDeviceVerifier v;
    int64_t df = 0;
    const double chi2 = run_case(c, v, &df, 50000);  // emulated launches: a quarter of the host's trials
    const double crit = chi2_crit(df);
    std::printf("[spec-sampling] device walk %-30s chi2 %.1f (df %lld, critical %.1f at 1e-4)\n", c.name, chi2,
                static_cast<long long>(df), crit);
    EXPECT_LT(chi2, crit) << c.name;
  }
}

// The device walk and the host verifier, given the same uniforms, accept the same path and emit the same
// token: random trees of up to 12 nodes with explicit and one-hot q, and top-k / top-p cuts.
TEST(SpeculativeSampling, DeviceWalkEqualsTheHostVerifier) {
  std::mt19937 g(3);
  const int64_t V = 12;
  int same = 0, total = 0, deep = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    SamplerConfig sc;
    sc.temperature = trial % 2 ? 1.f : 0.6f;
    if (trial % 3 == 1) sc.top_k = 6;
    if (trial % 5 == 2) sc.top_p = 0.8f;
    const Sampler sampler(sc);
    const int64_t n = 1 + static_cast<int64_t>(g() % 12);
    Logits lg;
    lg.n_vocab = V;
    lg.n_rows = n + 1;
    std::normal_distribution<float> N(0.f, 1.5f);
    for (int64_t i = 0; i < (n + 1) * V; ++i) lg.data.push_back(N(g));
    Draft d;
    d.n_vocab = V;
    for (int64_t j = 0; j < n; ++j) {
      const int32_t parent = static_cast<int32_t>(g() % (j + 1)) - 1;
      // The draft leans towards the target's likely tokens so that paths get accepted.
      std::vector<float> q(static_cast<size_t>(V));
      double s = 0;
      for (int64_t x = 0; x < V; ++x) s += (q[static_cast<size_t>(x)] = std::exp(lg.data[static_cast<size_t>((parent + 1) * V + x)] + 0.5f * N(g)));
      for (auto& v : q) v = static_cast<float>(v / s);
      Rng pick(g());
      const Token t = Sampler::sample_from(q, pick);
      if (j % 3 == 2) d.add(t, parent);  // one-hot
      else d.add(t, parent, q);
    }
    const std::vector<Token> history = {0};
    const uint64_t seed = g();
    Rng r_host(seed), r_dev(seed);
    SpeculativeSamplingVerifier host;
    EmulatedDeviceVerifier dev;
    Accepted a_host, a_dev;
    ForwardOptions fo;
    host.prepare(d, sampler, r_host, fo);  // the same uniforms as the device walk draws
    host.accept(d, lg, history, sampler, r_host, a_host);
    dev.accept(d, lg, history, sampler, r_dev, a_dev);
    ++total;
    same += a_host.tokens == a_dev.tokens && a_host.path == a_dev.path;
    deep += a_host.n_accepted >= 2;
  }
  // Float vs double sums may flip a decision whose uniform falls within rounding of its threshold.
  std::printf("[spec-sampling] device walk vs host verifier: %d of %d steps identical\n", same, total);
  EXPECT_GE(same, total - total / 200) << same << " of " << total << " steps agree";
  EXPECT_GT(deep, 100);
}

TEST(SpeculativeSampling, WrongVerifierIsCaught) {
  // Cases where the bug changes the output distribution: the wrong verifier must fail the same test.
  // (Not where the residual equals p: q == p, disjoint supports, a draft token with p = 0.)
  for (const auto& c : cases()) {
    const std::string n = c.name;
    if (n == "q_equals_p" || n == "disjoint_supports" || n == "one_hot_draft_p_zero") continue;
    WrongVerifier v;
    int64_t df = 0;
    const double chi2 = run_case(c, v, &df);
    std::printf("[spec-sampling] wrong verifier %-30s chi2 %.1f (critical %.1f)\n", c.name, chi2, chi2_crit(df));
    EXPECT_GT(chi2, chi2_crit(df)) << c.name << ": the biased verifier was not detected";
  }
}

// Two levels: a chain of depth 2 with draft distributions q1, q2; the target's next-token distribution
// is p1 at the root and p2 after any first token. The pair (first, second) emitted must follow p1 x p2;
// when a step emits only one token the second is drawn by plain sampling from p2 (the next step).
TEST(SpeculativeSampling, ChainOfTwoFollowsJointTargetDistribution) {
  const std::vector<double> p1 = {0.5, 0.3, 0.2, 0.0}, p2 = {0.1, 0.2, 0.3, 0.4};
  const std::vector<float> q1 = {0.2, 0.2, 0.2, 0.4}, q2 = {0.7, 0.1, 0.1, 0.1};
  SamplerConfig sc;
  sc.temperature = 1.f;
  Sampler sampler(sc);
  Logits logits;
  logits.n_vocab = 4;
  logits.n_rows = 3;
  for (const auto* p : {&p1, &p2, &p2})
    for (double x : *p) logits.data.push_back(x > 0 ? static_cast<float>(std::log(x)) : -INFINITY);
  const std::vector<float> p2f(p2.begin(), p2.end());
  SpeculativeSamplingVerifier v;
  Rng rng(7);
  Draft d;
  d.n_vocab = 4;
  Accepted acc;
  std::vector<int64_t> count(16, 0);
  const std::vector<Token> history = {0};
  for (int64_t t = 0; t < kTrials; ++t) {
    d.clear();
    const int32_t a = d.add(Sampler::sample_from(q1, rng), -1, q1);
    d.add(Sampler::sample_from(q2, rng), a, q2);
    v.accept(d, logits, history, sampler, rng, acc);
    const Token y1 = acc.tokens[0];
    const Token y2 = acc.tokens.size() > 1 ? acc.tokens[1] : Sampler::sample_from(p2f, rng);
    count[static_cast<size_t>(y1 * 4 + y2)]++;
  }
  double chi2 = 0;
  int64_t df = -1;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const double e = p1[static_cast<size_t>(i)] * p2[static_cast<size_t>(j)] * kTrials;
      if (e == 0) {
        EXPECT_EQ(count[static_cast<size_t>(i * 4 + j)], 0);
        continue;
      }
      const double o = static_cast<double>(count[static_cast<size_t>(i * 4 + j)]);
      chi2 += (o - e) * (o - e) / e;
      ++df;
    }
  std::printf("[spec-sampling] chain of two: chi2 %.1f (df %lld, critical %.1f)\n", chi2, static_cast<long long>(df), chi2_crit(df));
  EXPECT_LT(chi2, chi2_crit(df));
}

// Greedy verification of a tree: the emitted sequence is the argmax path, whatever sibling order.
TEST(GreedyVerifier, FollowsArgmaxThroughTree) {
  Logits logits;
  logits.n_vocab = 4;
  // rows: root, node0 (tok 1), node1 (tok 2), node2 (tok 3, child of node1)
  logits.n_rows = 4;
  logits.data = {0, 0, 5, 0,   // root: argmax 2
                 9, 0, 0, 0,   // after node0
                 0, 0, 0, 7,   // after node1: argmax 3
                 0, 8, 0, 0};  // after node2: argmax 1 (bonus)
  Draft d;
  d.n_vocab = 4;
  d.add(1, -1);
  const int32_t n1 = d.add(2, -1);
  d.add(3, n1);
  GreedyVerifier v;
  Sampler s(SamplerConfig{});
  Rng rng(0);
  Accepted acc;
  const std::vector<Token> h = {0};
  v.accept(d, logits, h, s, rng, acc);
  EXPECT_EQ(acc.tokens, (std::vector<Token>{2, 3, 1}));
  EXPECT_EQ(acc.path, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(acc.n_accepted, 2);
  EXPECT_TRUE(acc.all_accepted);
}

}  // namespace
}  // namespace specula
