#pragma once
// Drafters guess the next tokens cheaply; the target verifies them all in one forward pass.
//
// A draft is a token tree rooted at the last committed token (a chain is the common case). Node i has
// a parent (-1 = the root) and a depth (1 for the root's children); nodes are stored in topological
// order (parent index < node index) and siblings in the order the verifier tries them. Each node
// carries the draft distribution q its token was drawn from (needed by speculative sampling), or
// nothing, meaning q = one-hot at the token (a deterministic proposal: n-gram lookup, greedy drafts).
//
// Storage is reused across steps: clear() keeps capacity, so the decode loop allocates nothing once
// warmed up.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/kv_cache.h"
#include "core/model.h"
#include "core/sampler.h"

namespace specula {

struct DraftNode {
  Token token = 0;
  int32_t parent = -1;     // -1: child of the root (the last committed token)
  int32_t depth = 1;       // 1 + depth of the parent
  int64_t q_offset = -1;   // offset of q in Draft::q_data; -1: q is one-hot at `token`
};

struct Draft {
  int64_t n_vocab = 0;
  std::vector<DraftNode> nodes;
  std::vector<float> q_data;  // n_vocab floats per node that has an explicit q

  void clear() {
    nodes.clear();
    q_data.clear();
  }
  int64_t size() const { return static_cast<int64_t>(nodes.size()); }
  bool empty() const { return nodes.empty(); }
  // True when node i is the only child of node i-1 for every i (a plain sequence).
  bool is_chain() const;
  int32_t depth() const;
  // Appends a node with one-hot q; returns its index.
  int32_t add(Token t, int32_t parent);
  // Appends a node whose q (n_vocab floats) is copied from `q`; returns its index.
  int32_t add(Token t, int32_t parent, std::span<const float> q);
  // q of node i (empty span for one-hot).
  std::span<const float> q(int64_t i) const;
  // q(i)[token of node i] (1 for one-hot).
  float q_of_token(int64_t i) const;
};

// What a drafter sees at each step.
struct DraftContext {
  // Prompt + every committed token. The last one is not in the target cache yet (it is the root of the
  // draft and the first token of the verification pass).
  std::span<const Token> tokens;
  // The target's cache, holding tokens[0, size-1). A drafter that shares the target's weights (self-draft)
  // may append slots while drafting but must truncate back to the same size before returning.
  KvCache* target_cache = nullptr;
  // The target's sampler: in sampling mode draft distributions q go through the same transforms
  // (repetition penalty, temperature, top-k, top-p, min-p) as the target's p. Greedy: drafts are argmax.
  const Sampler* sampler = nullptr;
  Rng* rng = nullptr;
  // Adaptive stopping: end a chain once the draft probability of its next token is below this (0 = off).
  float min_confidence = 0.f;
  // Tree budget for this step (the loop caps it by the context left).
  int64_t max_nodes = 64;
};

struct DrafterStats {
  int64_t proposals = 0;      // propose() calls
  int64_t nodes = 0;          // tokens proposed (tree nodes)
  int64_t forwards = 0;       // draft-model forward calls (0 for model-free drafters)
  int64_t fed_tokens = 0;     // tokens run through the draft model (incl. catch-up on committed tokens)
  int64_t accepted = 0;       // sum of on_accept(n)
  double prefill_s = 0;       // begin(): draft-model prefill of the prompt
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  // The resolved spec, e.g. "ngram:min=1,max=3,branches=1".
  virtual std::string describe() const = 0;
  // True when proposals are deterministic (q one-hot): the verifier then needs no stored q.
  virtual bool deterministic() const = 0;
  // A new sequence starts with `prompt`; `context` is the longest the sequence will get (KV capacity).
  virtual void begin(std::span<const Token> prompt, int64_t context) = 0;
  // Proposes up to max_k tokens deep (a chain, or a tree within ctx.max_nodes) into `out` (cleared first).
  // May propose nothing.
  virtual void propose(const DraftContext& ctx, int64_t max_k, Draft& out) = 0;
  // Most nodes one draft of depth k can have (k for a chain; branches * k for the trees here). The loop
  // refuses a configuration whose trees could exceed its node limit.
  virtual int64_t max_nodes(int64_t k) const { return k; }
  // The verifier accepted n of the proposed tokens (along one path).
  virtual void on_accept(int64_t n) { stats_.accepted += n; }
  const DrafterStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  DrafterStats stats_;
};

}  // namespace specula
