// Units without models: SPEC strings, strategies (spec + YAML), n-gram proposals, draft trees.
#include <gtest/gtest.h>

#include "core/model_config.h"
#include "core/spec_string.h"
#include "draft/ngram_drafter.h"
#include "sparsity/strategy.h"
#include "tests/test_util.h"

namespace specula {
namespace {

ModelConfig cfg30() {
  ModelConfig c;
  c.n_layer = 30;
  return c;
}

TEST(SpecString, ParsesListValuesAndReportsBadKeys) {
  SpecString s = SpecString::parse("layerskip:skip=3,5,10-12,branches=2");
  EXPECT_EQ(s.name, "layerskip");
  EXPECT_EQ(s.kv.at("skip"), "3,5,10-12");
  EXPECT_EQ(s.take_int("branches", 1, 1, 64), 2);
  EXPECT_EQ(parse_int_list(s.take_required("skip"), "skip"), (std::vector<int64_t>{3, 5, 10, 11, 12}));
  s.expect_empty({});
  test::expect_error([] { SpecString::parse(":x=1"); }, {"invalid spec"});
  test::expect_error([] { SpecString::parse("ngram:max"); }, {"ngram:max", "key=value"});
  test::expect_error([] { SpecString::parse("ngram:max=1,max=2"); }, {"'max' given twice"});
  SpecString t = SpecString::parse("ngram:bogus=1");
  test::expect_error([&] { t.expect_empty({"min", "max"}); }, {"unknown key 'bogus'", "min, max"});
  SpecString u = SpecString::parse("x:k=abc");
  test::expect_error([&] { u.take_int("k", 0, 1, 9); }, {"k=abc", "[1, 9]"});
}

TEST(Strategy, BuildsFromSpecAndYaml) {
  const ModelConfig c = cfg30();
  auto e = make_strategy("early-exit:layers=8", c);
  EXPECT_EQ(e->forward_plan().exit_after, 8);
  EXPECT_FALSE(e->exact());
  EXPECT_EQ(e->forward_plan().hook, nullptr);
  auto s = make_strategy(YAML::Load("{name: layerskip, skip: [3, 5, 7]}"), "draft.strategy", c);
  ASSERT_EQ(s->forward_plan().skip_layer.size(), 30u);
  EXPECT_TRUE(s->forward_plan().skip_layer[5]);
  EXPECT_FALSE(s->forward_plan().skip_layer[4]);
  EXPECT_NE(s->describe().find("3,5,7"), std::string::npos);
  test::expect_error([&] { make_strategy("early-exit:layers=30", c); }, {"layers=30", "[1, 29]"});
  test::expect_error([&] { make_strategy("early-exit", c); }, {"missing required key 'layers'"});
  test::expect_error([&] { make_strategy("layerskip:skip=0-29", c); }, {"all 30 layers"});
  test::expect_error([&] { make_strategy("layerskip:skip=40", c); }, {"invalid layer 40"});
  test::expect_error([&] { make_strategy("early-exit:layers=3,foo=1", c); }, {"unknown key 'foo'", "layers"});
  test::expect_error([&] { make_strategy("nope", c); }, {"unknown strategy 'nope'", "early-exit", "layerskip"});
  test::expect_error([&] { make_strategy(YAML::Load("{name: early-exit, layer: 3}"), "draft.strategy", c); },
                     {"draft.strategy.layer", "unknown key"});
}

TEST(NgramDrafter, ProposesContinuationOfLatestLongestMatch) {
  NgramConfig nc;
  nc.min_ngram = 1;
  nc.max_ngram = 3;
  NgramDrafter d(nc);
  // ... 1 2 3 [9 9] ... 7 2 3 [5 6] ... 2 3  -> longest match "2 3" most recent: continuation 5 6 ...
  const std::vector<Token> s = {1, 2, 3, 9, 9, 4, 7, 2, 3, 5, 6, 8, 2, 3};
  DraftContext ctx;
  ctx.tokens = s;
  Draft out;
  d.propose(ctx, 3, out);
  ASSERT_EQ(out.size(), 3);
  EXPECT_TRUE(out.is_chain());
  EXPECT_EQ(out.nodes[0].token, 5);
  EXPECT_EQ(out.nodes[1].token, 6);
  EXPECT_EQ(out.nodes[2].token, 8);
  // Tree: a second candidate (the older "2 3" -> 9 9 4) becomes a sibling branch.
  nc.branches = 2;
  NgramDrafter t(nc);
  t.propose(ctx, 3, out);
  ASSERT_EQ(out.size(), 6);
  EXPECT_FALSE(out.is_chain());
  EXPECT_EQ(out.nodes[3].token, 9);
  EXPECT_EQ(out.nodes[3].parent, -1);
  EXPECT_EQ(out.nodes[5].depth, 3);
  // No match: nothing proposed.
  const std::vector<Token> none = {1, 2, 3, 4};
  ctx.tokens = none;
  d.propose(ctx, 3, out);
  EXPECT_TRUE(out.empty());
  test::expect_error([] { NgramDrafter({3, 2, 1}); }, {"max=2", "min"});
}

TEST(NgramDrafter, PerMatchCutsContinuationsOfShortMatches) {
  NgramConfig nc;
  nc.min_ngram = 1;
  nc.max_ngram = 8;
  nc.per_match = 1.0;
  NgramDrafter d(nc);
  DraftContext ctx;
  Draft out;
  // Last token 3 matches once (n = 1): one drafted token.
  const std::vector<Token> one = {3, 5, 6, 7, 8, 4, 3};
  ctx.tokens = one;
  d.propose(ctx, 4, out);
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(out.nodes[0].token, 5);
  // "2 3 4" matches (n = 3): three tokens of the k = 4 asked for.
  const std::vector<Token> three = {2, 3, 4, 9, 8, 7, 6, 1, 2, 3, 4};
  ctx.tokens = three;
  d.propose(ctx, 4, out);
  ASSERT_EQ(out.size(), 3);
  EXPECT_EQ(out.nodes[2].token, 7);
  EXPECT_EQ(d.describe(), "ngram:min=1,max=8,branches=1,per_match=1");
  nc.per_match = -1;
  test::expect_error([&] { NgramDrafter{nc}; }, {"per_match=-1", ">= 0"});
}

TEST(NgramDrafter, AdaptiveLengthFollowsConfidenceAndLearnsOnline) {
  NgramConfig nc;
  nc.min_ngram = 1;
  nc.max_ngram = 8;
  nc.conf = 0.5;
  NgramDrafter d(nc);
  EXPECT_EQ(d.describe(), "ngram:min=1,max=8,branches=1,conf=0.5");
  DraftContext ctx;
  Draft out;
  // A long copy: the suffix 1..7 occurred once, followed by 8 9 1 2 ...: each token is re-matched with the
  // drafted ones appended (n >= 7, one occurrence, agreeing: prior 0.9), so 0.9^k >= 0.5 for k <= 6.
  const std::vector<Token> copy = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7};
  ctx.tokens = copy;
  d.propose(ctx, 4, out);
  ASSERT_EQ(out.size(), 4);
  EXPECT_TRUE(out.is_chain());
  EXPECT_EQ(out.nodes[0].token, 8);
  EXPECT_EQ(out.nodes[1].token, 9);
  EXPECT_EQ(out.nodes[2].token, 1);
  EXPECT_EQ(out.nodes[3].token, 2);
  d.propose(ctx, 16, out);
  EXPECT_EQ(out.size(), 6);  // 0.9^7 < 0.5
  const auto m = d.best_match(copy);
  EXPECT_EQ(m.token, 8);
  EXPECT_NEAR(d.estimate(m.bucket), 0.9, 1e-12);
  // A weak match: the last token 5 occurred three times, followed by 6, 7 and 8 (the latest, 8, agrees with
  // a third of them): prior 0.2 < 0.5, nothing drafted.
  const std::vector<Token> weak = {5, 6, 1, 5, 7, 2, 5, 8, 3, 5};
  ctx.tokens = weak;
  d.propose(ctx, 4, out);
  EXPECT_TRUE(out.empty());
  const auto w = d.best_match(weak);
  EXPECT_EQ(w.token, 8);
  EXPECT_NEAR(d.estimate(w.bucket), 0.2, 1e-12);
  // Verification results move the estimates: rejections of the long copy's first token lower its bucket,
  // acceptances raise it (the prior counts as 4 trials).
  for (int i = 0; i < 4; ++i) {
    ctx.tokens = copy;
    d.propose(ctx, 4, out);
    d.on_accept(0);  // first token rejected; the rest were not judged
  }
  EXPECT_NEAR(d.estimate(m.bucket), 0.45, 1e-12);  // (0 + 4 * 0.9) / (4 + 4)
  ctx.tokens = copy;
  d.propose(ctx, 4, out);
  EXPECT_TRUE(out.empty());  // 0.45 < 0.5
  NgramDrafter e(nc);
  for (int i = 0; i < 12; ++i) {
    ctx.tokens = copy;
    e.propose(ctx, 1, out);
    ASSERT_EQ(out.size(), 1);
    e.on_accept(1);
  }
  EXPECT_NEAR(e.estimate(m.bucket), (12 + 4 * 0.9) / 16, 1e-12);
  // Bad combinations and values.
  nc.branches = 2;
  test::expect_error([&] { NgramDrafter{nc}; }, {"conf=0.5", "branches=2"});
  nc.branches = 1;
  nc.per_match = 1;
  test::expect_error([&] { NgramDrafter{nc}; }, {"conf=0.5", "per_match=1"});
  nc.per_match = 0;
  nc.conf = 1;
  test::expect_error([&] { NgramDrafter{nc}; }, {"conf=1", "[0, 1)"});
}

}  // namespace
}  // namespace specula
