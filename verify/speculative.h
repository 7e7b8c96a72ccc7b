#pragma once
// The speculative decoding loop: draft -> verify all draft nodes in ONE target forward pass -> accept ->
// roll the KV cache back to the accepted path.
//
// State between steps: the target cache holds every committed token but the last one (the "root"). A
// step drafts up to k tokens after the root, runs [root, node_0, ..., node_{n-1}] through the target
// (positions: cache size + depth; a tree gets an explicit ancestor-only attention mask, a chain the
// ordinary causal mask) with logits for every row, lets the verifier pick the accepted path plus one
// target token, moves the accepted path's keys/values to consecutive slots (trees only) and truncates
// the cache to root + accepted path. The new root is the target's token.
//
// Counters (SpecStats), precisely:
//   steps                verification passes of the target (each emits >= 1 token)
//   tau                  (generated tokens - 1) / steps: tokens produced per verification pass, counting the
//                        target's bonus/correction token (the first generated token comes from the prefill,
//                        not from a verification step). Plain decoding has tau = 1. Pooled over several
//                        generations (add()): sum of (generated - 1) / sum of steps.
//   acceptance_by_position[i]  among steps whose accepted path reached depth i and whose draft had a node at
//                        depth i+1 below it, the fraction that accepted a depth-(i+1) token (the conditional
//                        per-position acceptance rate a_i of the cost model).
//   acceptance_rate      accepted draft tokens / drafted tokens (all nodes of all drafts).
//   draft_s / verify_s   time in Drafter::propose / in the target's verification forward + Verifier::accept;
//   bookkeeping_s        the rest of the decode loop (cache rollback, committing tokens, adaptive k, stats).
//   decode_s             everything after the target's prefill, incl. the drafter's own prefill (begin()).
#include <cstdint>
#include <functional>
#include <vector>

#include "core/generator.h"
#include "draft/draft.h"
#include "verify/verifier.h"

namespace specula {

enum class DraftLength : uint8_t {
  Fixed,     // always k
  Adaptive,  // start at k; +1 after a step that accepted the whole draft, -1 after a rejection; in [k_min, k_max]
};

struct SpecConfig {
  GenerateConfig gen;               // max_tokens, context, prefill chunk, stop at EOG, KV dtype
  int64_t k = 4;                    // draft depth (tokens per chain)
  DraftLength length = DraftLength::Fixed;
  int64_t k_min = 1, k_max = 16;    // Adaptive bounds
  float min_confidence = 0.f;       // stop a model/self draft chain when its probability drops below (0 = off)
  int64_t max_nodes = 64;           // tree limits: nodes per draft ...
  int64_t max_depth = 16;           // ... and depth (k, k_max <= this)
  // Error naming the field unless 1 <= k <= max_depth, 1 <= k_min <= k <= k_max <= max_depth, ...
  void validate() const;
};

struct SpecStats {
  int64_t steps = 0, drafted = 0, accepted = 0, generated = 0;
  std::vector<int64_t> reached_at, accepted_at;  // per depth-1 index, see acceptance_by_position
  std::vector<int64_t> k_used;                   // histogram of the draft depth asked for (index = k)
  double prefill_s = 0, draft_s = 0, verify_s = 0, bookkeeping_s = 0, decode_s = 0, draft_prefill_s = 0;
  int64_t draft_forwards = 0;
  // Generations pooled by add(); 0 on a single run's counters (generations() counts that as one).
  // Each generation's first token comes from its prefill, not from a verification pass, so tau
  // subtracts one token per generation.
  int64_t runs = 0;
  int64_t generations() const { return runs > 0 ? runs : (generated > 0 || steps > 0 ? 1 : 0); }

  double tau() const {
    return steps > 0 ? static_cast<double>(generated - generations()) / static_cast<double>(steps) : 0;
  }
  double acceptance_rate() const { return drafted > 0 ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0; }
  std::vector<double> acceptance_by_position() const;
  double tokens_per_s() const { return decode_s > 0 ? static_cast<double>(generated) / decode_s : 0; }
  // Adds another run's counters (for aggregating over prompts).
  void add(const SpecStats& o);
};

struct SpecResult {
  std::vector<Token> tokens;  // generated ids (prompt excluded)
  bool stopped_at_eog = false;
  SpecStats stats;
};

// A prompt already run through the target (to share one prefill between several runs, e.g. tests and
// benchmarks comparing drafters): `cache` holds the prompt, `last` its last logits row. Copied, not changed.
struct Prefilled {
  const KvCache* cache = nullptr;
  const Logits* last = nullptr;
};

// Speculative generation with `drafter` and `verifier`. Same contract as generate() (core/generator.h):
// with a greedy sampler and an exact verifier the tokens equal generate()'s. on_token(id) is called for
// each committed token in order.
SpecResult speculative_generate(Model& target, Drafter& drafter, Verifier& verifier, const std::vector<Token>& prompt,
                                const SpecConfig& cfg, const Sampler& sampler, Rng& rng,
                                const std::function<void(Token)>& on_token = {}, const Prefilled* prefilled = nullptr);

}  // namespace specula
