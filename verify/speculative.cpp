#include "verify/speculative.h"

#include <chrono>
#include <cstring>

#include "core/error.h"
#include "core/tokenizer.h"
#include "kernels/ops.h"

namespace specula {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void SpecConfig::validate() const {
  if (max_depth < 1 || max_nodes < 1) fail("invalid draft limits: max depth {} and max nodes {} must be >= 1", max_depth, max_nodes);
  if (k < 1) fail("invalid draft length k={}: expected k >= 1", k);
  if (k > max_depth) fail("invalid draft length k={}: the maximum draft depth is {}", k, max_depth);
  if (length == DraftLength::Adaptive) {
    if (k_min < 1 || k_min > k) fail("invalid adaptive k-min={}: expected 1 <= k-min <= k ({})", k_min, k);
    if (k_max < k || k_max > max_depth)
      fail("invalid adaptive k-max={}: expected k ({}) <= k-max <= the maximum draft depth {}", k_max, k, max_depth);
  }
  if (!(min_confidence >= 0.f && min_confidence < 1.f))
    fail("invalid min-confidence {}: expected 0 <= min-confidence < 1 (0 = off)", min_confidence);
}

std::vector<double> SpecStats::acceptance_by_position() const {
  std::vector<double> a;
  for (size_t i = 0; i < reached_at.size(); ++i) {
    if (reached_at[i] == 0) break;
    a.push_back(static_cast<double>(accepted_at[i]) / static_cast<double>(reached_at[i]));
  }
  return a;
}

void SpecStats::add(const SpecStats& o) {
  runs = generations() + o.generations();
  steps += o.steps;
  drafted += o.drafted;
  accepted += o.accepted;
  generated += o.generated;
  auto addv = [](std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    if (a.size() < b.size()) a.resize(b.size(), 0);
    for (size_t i = 0; i < b.size(); ++i) a[i] += b[i];
  };
  addv(reached_at, o.reached_at);
  addv(accepted_at, o.accepted_at);
  addv(k_used, o.k_used);
  prefill_s += o.prefill_s;
  draft_s += o.draft_s;
  verify_s += o.verify_s;
  bookkeeping_s += o.bookkeeping_s;
  decode_s += o.decode_s;
  draft_prefill_s += o.draft_prefill_s;
  draft_forwards += o.draft_forwards;
}


SpecResult speculative_generate(Model& target, Drafter& drafter, Verifier& verifier, const std::vector<Token>& prompt,
                                const SpecConfig& cfg, const Sampler& sampler, Rng& rng,
                                const std::function<void(Token)>& on_token, const Prefilled* prefilled) {
  cfg.validate();
  const GenerateConfig& gc = cfg.gen;
  if (prompt.empty()) fail("empty prompt: at least one token is needed to start generation");
  if (gc.max_tokens < 0) fail("invalid max-tokens {}: expected >= 0", gc.max_tokens);
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t ctx = gc.context > 0 ? gc.context : n_prompt + gc.max_tokens;
  if (n_prompt >= ctx)
    fail("prompt has {} tokens but the context is {} tokens: the prompt must be shorter than the context", n_prompt, ctx);
  const int64_t k_top = cfg.length == DraftLength::Adaptive ? cfg.k_max : cfg.k;
  if (cfg.k > ctx - n_prompt)
    fail("draft length k={} is larger than the context left after the prompt ({} of {} tokens)", cfg.k, ctx - n_prompt, ctx);

  // A verification pass holds the last accepted token and the draft nodes; the kernels guarantee
  // bit-identical results (hence greedy output equal to plain decoding) only up to a pass size.
  if (cfg.max_nodes + 1 > ops::max_invariant_tokens())
    fail("max_nodes {} per verification pass is above the engine's limit of {} (passes of at most {} tokens are "
         "computed exactly as single-token decoding)",
         cfg.max_nodes, ops::max_invariant_tokens() - 1, ops::max_invariant_tokens());
  if (drafter.max_nodes(k_top) > cfg.max_nodes)
    fail("draft tree of up to {} nodes ('{}' at k={}) exceeds the limit of {} nodes per verification pass",
         drafter.max_nodes(k_top), drafter.describe(), k_top, cfg.max_nodes);

  SpecResult r;
  SpecStats& st = r.stats;
  st.reached_at.assign(static_cast<size_t>(k_top), 0);
  st.accepted_at.assign(static_cast<size_t>(k_top), 0);
  st.k_used.assign(static_cast<size_t>(k_top + 1), 0);

  KvCache cache;
  Logits logits;
  const double t0 = now_s();
  if (prefilled) {
    if (prefilled->cache->size() != n_prompt || prefilled->cache->capacity() < ctx)
      fail("prefilled cache holds {} slots of capacity {}: expected the {}-token prompt and capacity >= {}",
           prefilled->cache->size(), prefilled->cache->capacity(), n_prompt, ctx);
    cache = *prefilled->cache;
    logits = *prefilled->last;
  } else {
    cache = target.make_cache(ctx, gc.kv_dtype);
    prefill(target, prompt, cache, gc.prefill_chunk, logits, gc.plan);
  }
  const double t1 = now_s();
  st.prefill_s = t1 - t0;

  // Buffers reused by every step.
  std::vector<Token> history;
  history.reserve(static_cast<size_t>(ctx + cfg.max_nodes + 1));
  history.assign(prompt.begin(), prompt.end());
  std::vector<Token> vtok;
  std::vector<Pos> vpos;
  std::vector<uint8_t> mask, has_child;
  vtok.reserve(static_cast<size_t>(cfg.max_nodes + 1));
  vpos.reserve(static_cast<size_t>(cfg.max_nodes + 1));
  Draft draft;
  draft.n_vocab = target.config().n_vocab;
  Accepted acc;
  Logits vlogits;
  const Tokenizer* tok = target.has_tokenizer() ? &target.tokenizer() : nullptr;

  const DrafterStats ds0 = drafter.stats();
  drafter.begin(prompt, ctx);

  bool stop = false;
  // Commits one token; returns false when generation must stop.
  auto commit = [&](Token t) {
    r.tokens.push_back(t);
    history.push_back(t);
    if (on_token) on_token(t);
    if (gc.stop_at_eog && tok && tok->is_eog(t)) {
      r.stopped_at_eog = true;
      return false;
    }
    return static_cast<int64_t>(r.tokens.size()) < gc.max_tokens;
  };

  if (gc.max_tokens > 0) stop = !commit(sampler.sample(logits.row(logits.n_rows - 1), history, rng));
  else stop = true;
  int64_t k_cur = cfg.k;
  while (!stop) {
    const int64_t n_past = cache.size();  // = history.size() - 1: the root is not cached yet
    const int64_t room = cache.capacity() - n_past - 1;  // slots for draft nodes
    if (room < 0) break;                                 // context full (as generate() stops)
    const int64_t remaining = gc.max_tokens - static_cast<int64_t>(r.tokens.size());
    const int64_t k_step = std::min({k_cur, remaining - 1, room});

    // 1. Draft.
    const double ta = now_s();
    draft.clear();
    if (k_step > 0) {
      DraftContext dc;
      dc.tokens = history;
      dc.target_cache = &cache;
      dc.sampler = &sampler;
      dc.rng = &rng;
      dc.min_confidence = cfg.min_confidence;
      dc.max_nodes = std::min(cfg.max_nodes, room);
      drafter.propose(dc, k_step, draft);
      if (cache.size() != n_past) fail("drafter '{}' left the target cache at {} slots (expected {})", drafter.describe(), cache.size(), n_past);
      if (draft.size() > dc.max_nodes || draft.depth() > k_step)
        fail("drafter '{}' proposed {} nodes of depth {}: exceeds the limits of {} nodes and depth {}", drafter.describe(),
             draft.size(), draft.depth(), dc.max_nodes, k_step);
    }
    st.k_used[static_cast<size_t>(std::max<int64_t>(0, k_step))]++;
    const double tb = now_s();

    // 2. Verify every node in one target pass: [root, node_0, ..., node_{n-1}] at positions n_past + depth.
    const int64_t n = draft.size(), T = n + 1;
    vtok.resize(static_cast<size_t>(T));
    vpos.resize(static_cast<size_t>(T));
    vtok[0] = history.back();
    vpos[0] = static_cast<Pos>(n_past);
    for (int64_t i = 0; i < n; ++i) {
      vtok[static_cast<size_t>(i + 1)] = draft.nodes[static_cast<size_t>(i)].token;
      vpos[static_cast<size_t>(i + 1)] = static_cast<Pos>(n_past + draft.nodes[static_cast<size_t>(i)].depth);
    }
    ForwardOptions fo;
    fo.logits = LogitsFor::All;
    if (!draft.is_chain()) {
      // Tree attention: each row sees the cached prefix, the root and its own ancestors (and itself).
      const int64_t W = n_past + T;
      mask.assign(static_cast<size_t>(T * W), 0);
      for (int64_t rr = 0; rr < T; ++rr) {
        uint8_t* row = mask.data() + rr * W;
        std::memset(row, 1, static_cast<size_t>(n_past + 1));
        if (rr > 0) {
          const int64_t parent_row = draft.nodes[static_cast<size_t>(rr - 1)].parent + 1;
          if (parent_row > 0) std::memcpy(row + n_past + 1, mask.data() + parent_row * W + n_past + 1, static_cast<size_t>(T - 1));
          row[n_past + rr] = 1;
        }
      }
      fo.mask = mask.data();
    }
    // What the pass may compute for the verifier (argmax only; on a device, the acceptance itself).
    verifier.prepare(draft, sampler, rng, fo);
    target.forward(vtok, vpos, cache, gc.plan, vlogits, fo);
    verifier.accept(draft, vlogits, history, sampler, rng, acc);
    const double tc = now_s();

    // 3. Bookkeeping: statistics, cache rollback, commit.
    const int64_t m = acc.n_accepted;
    ++st.steps;
    st.drafted += n;
    st.accepted += m;
    has_child.assign(static_cast<size_t>(T), 0);
    for (const auto& nd : draft.nodes) has_child[static_cast<size_t>(nd.parent + 1)] = 1;
    for (int64_t i = 0; i <= m && i < k_top; ++i) {
      const int32_t node = i == 0 ? -1 : acc.path[static_cast<size_t>(i - 1)];
      if (!has_child[static_cast<size_t>(node + 1)]) break;
      st.reached_at[static_cast<size_t>(i)]++;
      if (i < m) st.accepted_at[static_cast<size_t>(i)]++;
    }
    // Accepted path -> consecutive slots after the root (already in place for a chain).
    for (int64_t j = 1; j <= m; ++j) {
      const int64_t src = n_past + 1 + acc.path[static_cast<size_t>(j - 1)], dst = n_past + j;
      if (src != dst) cache.move_slot(src, dst);
    }
    cache.truncate(n_past + 1 + m);
    drafter.on_accept(m);
    for (Token t : acc.tokens)
      if (!commit(t)) {
        stop = true;
        break;
      }
    if (cfg.length == DraftLength::Adaptive && n > 0) {
      if (acc.all_accepted) k_cur = std::min(k_cur + 1, cfg.k_max);
      else k_cur = std::max(k_cur - 1, cfg.k_min);
    }
    const double td = now_s();
    st.draft_s += tb - ta;
    st.verify_s += tc - tb;
    st.bookkeeping_s += td - tc;
  }
  const double t2 = now_s();
  st.decode_s = t2 - t1;
  st.generated = static_cast<int64_t>(r.tokens.size());
  const DrafterStats& ds = drafter.stats();
  st.draft_prefill_s = ds.prefill_s - ds0.prefill_s;
  st.draft_forwards = ds.forwards - ds0.forwards;
  // Time outside the steps (drafter prefill, first token) is bookkeeping too.
  st.bookkeeping_s = st.decode_s - st.draft_s - st.verify_s - st.draft_prefill_s;
  return r;
}

}  // namespace specula
