#include "draft/ngram_drafter.h"

#include <algorithm>

#include "core/error.h"

namespace specula {

NgramDrafter::NgramDrafter(NgramConfig cfg) : cfg_(cfg) {
  if (cfg_.min_ngram < 1) fail("ngram: invalid min={}: expected >= 1", cfg_.min_ngram);
  if (cfg_.max_ngram < cfg_.min_ngram)
    fail("ngram: invalid max={}: expected >= min ({})", cfg_.max_ngram, cfg_.min_ngram);
  if (cfg_.branches < 1) fail("ngram: invalid branches={}: expected >= 1", cfg_.branches);
  if (!(cfg_.per_match >= 0)) fail("ngram: invalid per_match={}: expected >= 0 (0 = off)", cfg_.per_match);
  if (!(cfg_.conf >= 0 && cfg_.conf < 1)) fail("ngram: invalid conf={}: expected a probability in [0, 1) (0 = fixed length)", cfg_.conf);
  if (cfg_.conf > 0 && cfg_.branches > 1)
    fail("ngram: conf={} (adaptive length) drafts a chain: it cannot be combined with branches={}", cfg_.conf, cfg_.branches);
  if (cfg_.conf > 0 && cfg_.per_match > 0)
    fail("ngram: conf={} (adaptive length) and per_match={} both set the draft length: use one", cfg_.conf, cfg_.per_match);
  trials_.assign(kBuckets, 0.0);
  hits_.assign(kBuckets, 0.0);
}

std::string NgramDrafter::describe() const {
  std::string d = fmt::format("ngram:min={},max={},branches={}", cfg_.min_ngram, cfg_.max_ngram, cfg_.branches);
  if (cfg_.per_match > 0) d += fmt::format(",per_match={}", cfg_.per_match);
  if (cfg_.conf > 0) d += fmt::format(",conf={}", cfg_.conf);
  return d;
}

NgramDrafter::Match NgramDrafter::best_match(std::span<const Token> s) const {
  // One backward scan: for every earlier end position i, the length of the common suffix of s[..i]
  // and s (capped at max_ngram); the best n is the longest such length >= min_ngram, its occurrences
  // every i reaching it, the latest one the largest such i.
  const int64_t L = static_cast<int64_t>(s.size());
  Match m;
  if (L < 2) return m;
  const int64_t cap = std::min(cfg_.max_ngram, L - 1);
  if (cap < cfg_.min_ngram) return m;
  int64_t best = 0, latest = -1;
  int64_t count = 0;
  thread_local std::vector<int64_t> ends;
  ends.clear();
  for (int64_t i = L - 2; i >= 0; --i) {
    int64_t len = 0;
    while (len < cap && len <= i && s[static_cast<size_t>(i - len)] == s[static_cast<size_t>(L - 1 - len)]) ++len;
    if (len < cfg_.min_ngram || len < best) continue;
    if (len > best) {
      best = len;
      latest = i;
      ends.clear();
    }
    ends.push_back(i);
  }
  if (best == 0) return m;
  count = static_cast<int64_t>(ends.size());
  m.token = s[static_cast<size_t>(latest + 1)];
  int64_t same = 0;
  for (int64_t e : ends) same += s[static_cast<size_t>(e + 1)] == m.token;
  const int32_t agree = same == count ? 2 : (2 * same >= count ? 1 : 0);
  const int64_t n = std::min<int64_t>(best, 8), c = std::min<int64_t>(count, 4);
  m.bucket = static_cast<int32_t>(((n - 1) * 4 + (c - 1)) * 3 + agree);
  return m;
}

double NgramDrafter::estimate(int32_t b) const {
  const int32_t agree = b % 3, n = b / 12 + 1;
  const double prior = agree == 2 ? std::min(0.9, 0.2 + 0.1 * n) : 0.2;
  constexpr double kPriorWeight = 4;
  return (hits_[static_cast<size_t>(b)] + kPriorWeight * prior) / (trials_[static_cast<size_t>(b)] + kPriorWeight);
}

void NgramDrafter::propose_adaptive(const DraftContext& ctx, int64_t max_k, Draft& out) {
  buf_.assign(ctx.tokens.begin(), ctx.tokens.end());
  double cum = 1;
  while (out.size() < max_k && out.size() < ctx.max_nodes) {
    const Match m = best_match(buf_);
    if (m.bucket < 0) break;
    cum *= estimate(m.bucket);
    if (cum < cfg_.conf) break;
    out.add(m.token, static_cast<int32_t>(out.size()) - 1);
    pending_.push_back(m.bucket);
    buf_.push_back(m.token);
  }
}

void NgramDrafter::on_accept(int64_t n) {
  // The first n drafted tokens were accepted and token n (if drafted) rejected; later ones were not judged.
  for (size_t j = 0; j < pending_.size() && static_cast<int64_t>(j) <= n; ++j) {
    trials_[static_cast<size_t>(pending_[j])] += 1;
    if (static_cast<int64_t>(j) < n) hits_[static_cast<size_t>(pending_[j])] += 1;
  }
  pending_.clear();
  Drafter::on_accept(n);
}

void NgramDrafter::propose(const DraftContext& ctx, int64_t max_k, Draft& out) {
  out.clear();
  ++stats_.proposals;
  const std::span<const Token> s = ctx.tokens;
  const int64_t len = static_cast<int64_t>(s.size());
  pending_.clear();
  if (max_k <= 0 || len < 2) return;
  if (cfg_.conf > 0) {
    propose_adaptive(ctx, max_k, out);
    stats_.nodes += out.size();
    return;
  }
  int64_t found = 0;
  for (int64_t n = std::min(cfg_.max_ngram, len - 1); n >= cfg_.min_ngram && found < cfg_.branches; --n) {
    const Token* pat = s.data() + len - n;
    // Candidate match starts i, most recent first; the match must end before the sequence does.
    for (int64_t i = len - n - 1; i >= 0 && found < cfg_.branches; --i) {
      if (s[static_cast<size_t>(i)] != pat[0] || !std::equal(pat, pat + n, s.data() + i)) continue;
      int64_t want = max_k;
      if (cfg_.per_match > 0) want = std::min(max_k, std::max<int64_t>(1, static_cast<int64_t>(cfg_.per_match * static_cast<double>(n))));
      const int64_t b = i + n, e = std::min(len, b + want);
      // Insert the continuation s[b, e) into the trie; count it if it added a node.
      int32_t cur = -1;
      bool added = false;
      for (int64_t j = b; j < e; ++j) {
        const Token t = s[static_cast<size_t>(j)];
        int32_t child = -1;
        for (int32_t c = cur + 1; c < static_cast<int32_t>(out.nodes.size()); ++c)
          if (out.nodes[static_cast<size_t>(c)].parent == cur && out.nodes[static_cast<size_t>(c)].token == t) {
            child = c;
            break;
          }
        if (child < 0) {
          if (out.size() >= ctx.max_nodes) break;
          child = out.add(t, cur);
          added = true;
        }
        cur = child;
      }
      if (added) ++found;
    }
  }
  stats_.nodes += out.size();
}

}  // namespace specula
