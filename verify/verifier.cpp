#include "verify/verifier.h"

#include <cmath>

#include "core/error.h"

namespace specula {

void Verifier::index_children(const Draft& d) {
  const size_t n = d.nodes.size();
  first_child_.assign(n + 1, -1);
  last_child_.assign(n + 1, -1);
  next_sibling_.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const size_t p = static_cast<size_t>(d.nodes[i].parent + 1);
    if (first_child_[p] < 0) first_child_[p] = static_cast<int32_t>(i);
    else next_sibling_[static_cast<size_t>(last_child_[p])] = static_cast<int32_t>(i);
    last_child_[p] = static_cast<int32_t>(i);
  }
}

bool Verifier::take_device_result(const Draft& draft, const Logits& logits, Accepted& out) {
  if (logits.accept_next < 0) return false;
  for (int32_t c : logits.accept_path) {
    if (c < 0 || c >= draft.size()) fail("acceptance from the device names draft node {} of {}", c, draft.size());
    out.tokens.push_back(draft.nodes[static_cast<size_t>(c)].token);
    out.path.push_back(c);
  }
  out.n_accepted = static_cast<int64_t>(out.path.size());
  out.tokens.push_back(logits.accept_next);
  out.all_accepted = first_child(out.path.empty() ? -1 : out.path.back()) < 0;
  return true;
}

void Verifier::fill_parents(const Draft& d) {
  parents_.resize(d.nodes.size());
  for (size_t i = 0; i < d.nodes.size(); ++i) parents_[i] = d.nodes[i].parent;
}

void GreedyVerifier::prepare(const Draft& draft, const Sampler& sampler, Rng&, ForwardOptions& fo) {
  if (!sampler.argmax_only()) return;
  // Greedy: the pass returns the argmax of each row, and a device also runs the acceptance.
  fo.argmax_only = true;
  fill_parents(draft);
  fo.draft_parents = parents_;
}

void SpeculativeSamplingVerifier::draw_uniforms(const Draft& draft, Rng& rng) {
  u_.resize(draft.nodes.size() + 1);
  for (auto& u : u_) u = rng.uniform();
}

void SpeculativeSamplingVerifier::prepare(const Draft& draft, const Sampler& sampler, Rng& rng, ForwardOptions& fo) {
  draw_uniforms(draft, rng);
  drawn_ = true;
  const SamplerConfig& sc = sampler.config();
  if (!sc.history_free_sampling()) return;  // the walk needs the history: host only
  fill_parents(draft);
  q_off_.resize(draft.nodes.size());
  for (size_t i = 0; i < draft.nodes.size(); ++i) q_off_[i] = draft.nodes[i].q_offset;
  fo.draft_parents = parents_;
  fo.spec_sampler = &sc;
  fo.spec_uniforms = u_;
  fo.spec_q_offsets = q_off_;
  fo.spec_q_data = draft.q_data;
}

void GreedyVerifier::accept(const Draft& draft, const Logits& logits, std::span<const Token> history,
                            const Sampler& sampler, Rng& rng, Accepted& out) {
  out.clear();
  index_children(draft);
  if (take_device_result(draft, logits, out)) return;
  const bool penalty = sampler.config().repetition_penalty != 1.f;
  if (penalty) hist_.assign(history.begin(), history.end());
  if (static_cast<int64_t>(logits.argmax.size()) != draft.size() + 1 && !logits.has_rows())
    fail("greedy verification: the pass returned neither logits nor an argmax for each of its {} rows", draft.size() + 1);
  const bool by_index = !penalty && !logits.argmax.empty();
  int32_t cur = -1;
  for (;;) {
    // The token plain greedy decoding would emit here (argmax, after the repetition penalty if any).
    const Token t = by_index ? logits.argmax[static_cast<size_t>(cur + 1)]
                    : penalty ? sampler.sample(logits.row(cur + 1), hist_, rng)
                              : Sampler::argmax(logits.row(cur + 1));
    int32_t c = first_child(cur);
    while (c >= 0 && draft.nodes[static_cast<size_t>(c)].token != t) c = next_sibling(c);
    out.tokens.push_back(t);
    if (c < 0) {
      out.all_accepted = first_child(cur) < 0;
      return;
    }
    out.path.push_back(c);
    ++out.n_accepted;
    if (penalty) hist_.push_back(t);
    cur = c;
  }
}

void SpeculativeSamplingVerifier::accept(const Draft& draft, const Logits& logits, std::span<const Token> history,
                                         const Sampler& sampler, Rng& rng, Accepted& out) {
  out.clear();
  index_children(draft);
  if (!drawn_ || u_.size() != draft.nodes.size() + 1) draw_uniforms(draft, rng);  // not prepared: draw them now
  drawn_ = false;
  for (size_t i = 0; i < draft.nodes.size(); ++i) {
    const float qx = draft.q_of_token(static_cast<int64_t>(i));
    if (!(qx > 0.f))
      fail("drafter proposed token {} with draft probability {}: q must be > 0 at its token", draft.nodes[i].token, qx);
  }
  if (take_device_result(draft, logits, out)) return;
  if (!logits.has_rows() || logits.n_rows < draft.size() + 1)
    fail("speculative sampling: the pass returned neither logits rows nor an acceptance for its {} rows", draft.size() + 1);
  hist_.assign(history.begin(), history.end());
  size_t tries = 0;
  int32_t cur = -1;
  for (;;) {
    sampler.distribution(logits.row(cur + 1), hist_, p_);
    int32_t c = first_child(cur);
    out.all_accepted = c < 0;
    int32_t taken = -1;
    for (; c >= 0; c = next_sibling(c)) {
      const Token x = draft.nodes[static_cast<size_t>(c)].token;
      const float qx = draft.q_of_token(c);
      // Accept with probability min(1, p(x) / q(x)).
      const double u = u_[tries++];
      if (u * qx < p_[static_cast<size_t>(x)]) {
        taken = c;
        break;
      }
      // Rejected: p <- normalise(max(0, p - q)).
      const std::span<const float> q = draft.q(c);
      double s = 0;
      if (q.empty()) {
        p_[static_cast<size_t>(x)] = 0.f;
        for (float v : p_) s += v;
      } else {
        for (size_t i = 0; i < p_.size(); ++i) {
          p_[i] = std::max(0.f, p_[i] - q[i]);
          s += p_[i];
        }
      }
      // s == 0 only when p <= q everywhere, i.e. p == q: then the rejection had probability 0 (rounding).
      if (!(s > 0)) {
        sampler.distribution(logits.row(cur + 1), hist_, p_);
        s = 1;
      }
      const float inv = static_cast<float>(1.0 / s);
      for (auto& v : p_) v *= inv;
    }
    if (taken < 0) {
      out.tokens.push_back(Sampler::sample_from(p_, u_.back()));
      return;
    }
    const Token x = draft.nodes[static_cast<size_t>(taken)].token;
    out.tokens.push_back(x);
    out.path.push_back(taken);
    ++out.n_accepted;
    hist_.push_back(x);
    cur = taken;
  }
}

TypicalAcceptanceVerifier::TypicalAcceptanceVerifier(TypicalConfig cfg) : cfg_(cfg) {
  if (!(cfg_.epsilon > 0.f && cfg_.epsilon <= 1.f)) fail("invalid typical epsilon {}: expected 0 < epsilon <= 1", cfg_.epsilon);
  if (!(cfg_.delta > 0.f && cfg_.delta <= 1.f)) fail("invalid typical delta {}: expected 0 < delta <= 1", cfg_.delta);
}

void TypicalAcceptanceVerifier::accept(const Draft& draft, const Logits& logits, std::span<const Token> history,
                                       const Sampler& sampler, Rng& rng, Accepted& out) {
  out.clear();
  index_children(draft);
  hist_.assign(history.begin(), history.end());
  int32_t cur = -1;
  for (;;) {
    sampler.distribution(logits.row(cur + 1), hist_, p_);
    double h = 0;  // entropy of p (nats)
    for (float v : p_)
      if (v > 0.f) h -= v * std::log(static_cast<double>(v));
    const double thr = std::min<double>(cfg_.epsilon, cfg_.delta * std::exp(-h));
    int32_t c = first_child(cur);
    out.all_accepted = c < 0;
    while (c >= 0 && !(p_[static_cast<size_t>(draft.nodes[static_cast<size_t>(c)].token)] > thr)) c = next_sibling(c);
    if (c < 0) {
      out.tokens.push_back(sampler.config().greedy() ? Sampler::argmax(p_) : Sampler::sample_from(p_, rng));
      return;
    }
    const Token x = draft.nodes[static_cast<size_t>(c)].token;
    out.tokens.push_back(x);
    out.path.push_back(c);
    ++out.n_accepted;
    hist_.push_back(x);
    cur = c;
  }
}

std::unique_ptr<Verifier> make_verifier(VerifyMode mode, const SamplerConfig& sc, const TypicalConfig& tc) {
  if (mode == VerifyMode::Typical) return std::make_unique<TypicalAcceptanceVerifier>(tc);
  if (sc.greedy()) return std::make_unique<GreedyVerifier>();
  return std::make_unique<SpeculativeSamplingVerifier>();
}

}  // namespace specula
