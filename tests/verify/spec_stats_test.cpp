// SpecStats: tau of one generation and of generations pooled with add().
#include <gtest/gtest.h>

#include "verify/speculative.h"

namespace specula {
namespace {

SpecStats run(int64_t generated, int64_t steps) {
  SpecStats s;
  s.generated = generated;
  s.steps = steps;
  return s;
}

TEST(SpecStats, TauCountsTheTokensOfVerificationPasses) {
  // 9 tokens: the first from the prefill, 8 from 4 passes.
  EXPECT_DOUBLE_EQ(run(9, 4).tau(), 2.0);
  // Plain decoding: one pass per token after the first.
  EXPECT_DOUBLE_EQ(run(64, 63).tau(), 1.0);
}

// Pooled over prompts, every generation's prefill token is left out, not only one: 30 plain runs of
// 128 tokens are tau 1, not (30 * 128 - 1) / (30 * 127).
TEST(SpecStats, PooledTauLeavesOutEveryGenerationsPrefillToken) {
  SpecStats pooled;
  for (int i = 0; i < 30; ++i) pooled.add(run(128, 127));
  EXPECT_EQ(pooled.runs, 30);
  EXPECT_DOUBLE_EQ(pooled.tau(), 1.0);
  SpecStats mixed;
  mixed.add(run(9, 4));
  mixed.add(run(5, 4));
  EXPECT_DOUBLE_EQ(mixed.tau(), (8.0 + 4.0) / 8.0);
  // Pooling pooled stats keeps counting generations.
  SpecStats outer;
  outer.add(mixed);
  outer.add(run(3, 2));
  EXPECT_EQ(outer.runs, 3);
  EXPECT_DOUBLE_EQ(outer.tau(), (8.0 + 4.0 + 2.0) / 10.0);
  // A single run's counters pooled into directly count as one generation, and empty stats as none.
  SpecStats first = run(9, 4);
  first.add(run(5, 4));
  first.add(SpecStats{});
  EXPECT_EQ(first.runs, 2);
  EXPECT_DOUBLE_EQ(first.tau(), (8.0 + 4.0) / 8.0);
}

}  // namespace
}  // namespace specula
