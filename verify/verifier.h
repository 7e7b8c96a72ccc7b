#pragma once
// Verifiers decide, from the target's logits for every draft node (one forward pass), which draft tokens
// to keep, and always add one token from the target (the correction at the first rejection, or the bonus
// token after the deepest accepted node).
//
// Logits layout: row 0 = the target's logits after the root (the last committed token), row i+1 = after
// draft node i. The target distribution p at a node is Sampler::distribution(row, history + path), so
// repetition penalty / temperature / top-k / top-p / min-p apply exactly as in plain decoding.
//
//  * GreedyVerifier: the target's token at each node (Sampler::sample, i.e. argmax); descend into the
//    child carrying that token if there is one. Output = plain greedy decoding, token for token. Without
//    a repetition penalty it reads only Logits::argmax, or takes the acceptance the pass computed on the
//    device (Logits::accept_path / accept_next, the same rule run by GreedyAcceptK).
//  * SpeculativeSamplingVerifier (lossless sampling; Leviathan et al. / Chen et al., and for trees the
//    multi-round scheme of SpecInfer): at a node with target distribution p, try the children in order;
//    child x with draft distribution q_x is accepted with probability min(1, p(x)/q_x(x)); on rejection
//    p <- normalise(max(0, p - q_x)) and the next child is tried against the updated p. If no child is
//    accepted the output token is drawn from the final p. Each round emits y with probability
//    min(q(y), p(y)) + P(reject) * max(0, p(y) - q(y)) / P(reject) = p(y), whatever q is (q may depend on
//    earlier siblings), so the output distribution equals the target's. A one-hot q (deterministic
//    draft) accepts x with probability p(x) and removes x from p on rejection. Each step draws n + 1
//    independent uniforms up front (one per possible try, one for the final draw); without a repetition
//    penalty a device runs the same walk with them (SpecAcceptK) and only the accepted path comes back.
//  * TypicalAcceptanceVerifier (LOSSY, Medusa): accept child x when p(x) > min(epsilon, delta * exp(-H(p)));
//    else sample from p. Faster, but the output distribution is not the target's.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/sampler.h"
#include "draft/draft.h"

namespace specula {

struct Accepted {
  std::vector<Token> tokens;    // accepted draft tokens, then the target's token; size n_accepted + 1
  std::vector<int32_t> path;    // draft node index of each accepted draft token (size n_accepted)
  int64_t n_accepted = 0;
  bool all_accepted = false;    // the last accepted node has no children (the final token is a bonus)
  void clear() {
    tokens.clear();
    path.clear();
    n_accepted = 0;
    all_accepted = false;
  }
};

enum class VerifyMode : uint8_t {
  Exact,    // greedy exact match (temperature 0) or lossless speculative sampling
  Typical,  // lossy typical acceptance
};

struct TypicalConfig {
  float epsilon = 0.3f;  // hard threshold (Medusa's posterior_threshold)
  float delta = 0.09f;   // entropy-scaled threshold (Medusa's posterior_alpha)
};

class Verifier {
 public:
  virtual ~Verifier() = default;
  virtual std::string name() const = 0;
  virtual bool lossy() const = 0;
  // Called before the verification pass of `draft`: sets what the pass may compute for this verifier
  // (ForwardOptions::argmax_only, draft_parents, spec_*; a device then runs the acceptance itself and
  // accept() takes Logits::accept_path). The spans point into this verifier and the draft, valid until
  // accept(). Default: nothing (full logits rows).
  virtual void prepare(const Draft& draft, const Sampler& sampler, Rng& rng, ForwardOptions& fo) {}
  // `history`: committed tokens (prompt + generated, incl. the root). Fills `out`.
  virtual void accept(const Draft& draft, const Logits& logits, std::span<const Token> history, const Sampler& sampler,
                      Rng& rng, Accepted& out) = 0;

 protected:
  // Children lists of the draft (reused buffers): first_child_[i+1] / next_sibling_[i] over nodes, root = 0.
  void index_children(const Draft& d);
  int32_t first_child(int32_t node) const { return first_child_[static_cast<size_t>(node + 1)]; }
  int32_t next_sibling(int32_t node) const { return next_sibling_[static_cast<size_t>(node)]; }
  std::vector<int32_t> first_child_, next_sibling_, last_child_;
  std::vector<Token> hist_;
  std::vector<int32_t> parents_;  // prepare(): each draft node's parent
  void fill_parents(const Draft& d);
  // Fills `out` from the acceptance the pass ran on the device (Logits::accept_path); false if none.
  bool take_device_result(const Draft& draft, const Logits& logits, Accepted& out);
};

class GreedyVerifier : public Verifier {
 public:
  std::string name() const override { return "greedy"; }
  bool lossy() const override { return false; }
  void prepare(const Draft& draft, const Sampler& sampler, Rng& rng, ForwardOptions& fo) override;
  void accept(const Draft& draft, const Logits& logits, std::span<const Token> history, const Sampler& sampler, Rng& rng,
              Accepted& out) override;
};

class SpeculativeSamplingVerifier : public Verifier {
 public:
  std::string name() const override { return "speculative-sampling"; }
  bool lossy() const override { return false; }
  // Draws the step's uniforms now; unless a repetition penalty keeps the walk on the host, also hands
  // them, the sampler and the drafts' q to the pass, so a device can run the walk.
  void prepare(const Draft& draft, const Sampler& sampler, Rng& rng, ForwardOptions& fo) override;
  void accept(const Draft& draft, const Logits& logits, std::span<const Token> history, const Sampler& sampler, Rng& rng,
              Accepted& out) override;

 protected:
  std::vector<float> p_;
  // The step's uniforms: n + 1 for n draft nodes, always drawn (try s uses u_[s], the final draw u_[n]),
  // so a step consumes the same Rng stream on every device.
  std::vector<double> u_;
  std::vector<int64_t> q_off_;
  bool drawn_ = false;
  void draw_uniforms(const Draft& draft, Rng& rng);
};

class TypicalAcceptanceVerifier : public Verifier {
 public:
  explicit TypicalAcceptanceVerifier(TypicalConfig cfg);
  std::string name() const override { return "typical-acceptance (lossy)"; }
  bool lossy() const override { return true; }
  void accept(const Draft& draft, const Logits& logits, std::span<const Token> history, const Sampler& sampler, Rng& rng,
              Accepted& out) override;

 private:
  TypicalConfig cfg_;
  std::vector<float> p_;
};

// Exact mode: greedy for a greedy sampler, else speculative sampling. Typical: lossy typical acceptance.
std::unique_ptr<Verifier> make_verifier(VerifyMode mode, const SamplerConfig& sc, const TypicalConfig& tc = {});

}  // namespace specula
