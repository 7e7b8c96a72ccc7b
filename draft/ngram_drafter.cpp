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
}

std::string NgramDrafter::describe() const {
  std::string d = fmt::format("ngram:min={},max={},branches={}", cfg_.min_ngram, cfg_.max_ngram, cfg_.branches);
  if (cfg_.per_match > 0) d += fmt::format(",per_match={}", cfg_.per_match);
  return d;
}

void NgramDrafter::propose(const DraftContext& ctx, int64_t max_k, Draft& out) {
  out.clear();
  ++stats_.proposals;
  const std::span<const Token> s = ctx.tokens;
  const int64_t len = static_cast<int64_t>(s.size());
  if (max_k <= 0 || len < 2) return;
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
