// Experiment configs: errors name the file, line and YAML path; grids expand as documented; layering
// (defaults < file with includes < --set); stable cell ids; the resolved dump loads back to the same cells.
#include <algorithm>

#include <gtest/gtest.h>

#include "experiments/datasets.h"
#include "experiments/grid.h"
#include "tests/experiments/exp_test_util.h"
#include "tests/test_util.h"

namespace specula {
namespace {

using config::load_study;
using test::expect_error;
using test::ScratchDir;

// ---- malformed configs: one message each, naming where the bad value was written -----------------

class ConfigErrors : public ::testing::Test {
 protected:
  // Loads `yaml` as x.yaml (plus --set assignments) and expects an error containing every word.
  void expect(const std::string& yaml, std::initializer_list<const char*> words, std::vector<std::string> sets = {}) {
    const std::string p = dir_.write("x.yaml", yaml);
    expect_error([&] { load_study(p, sets); }, words);
  }
  ScratchDir dir_;
};

TEST_F(ConfigErrors, UnknownKeyListsAcceptedKeys) {
  expect("draft:\n  spec: ngram\n  kk: 3\n",
         {"x.yaml:3: draft.kk: unknown key 'kk'", "accepted: spec, k, adaptive, k_min, k_max, min_confidence"});
}

TEST_F(ConfigErrors, UnknownTopLevelKey) {
  expect("modle: {path: smollm2-135m}\n", {"x.yaml:1: modle: unknown key 'modle'", "model, data", "grid, zip"});
}

TEST_F(ConfigErrors, WrongType) {
  expect("draft:\n  k: x\n", {"x.yaml:2: draft.k: expected an integer in [1, 16], got \"x\""});
  expect("data: {chat: maybe}\n", {"x.yaml:1: data.chat: expected true or false, got \"maybe\""});
  expect("data: {categories: {a: 1}}\n", {"data.categories: expected a list of strings"});
}

TEST_F(ConfigErrors, OutOfRange) {
  expect("generation:\n  max_tokens: 0\n", {"x.yaml:2: generation.max_tokens: expected an integer in [1, 1048576], got \"0\""});
  expect("sampling: {temperature: -1}\n", {"sampling.temperature: expected a number in [0, 100], got \"-1\""});
  expect("draft: {adaptive: true, k: 9, k_max: 8}\n", {"draft", "k_min <= k <= k_max", "k=9"});
}

TEST_F(ConfigErrors, UnknownChoice) {
  expect("model: {weights_dtype: int3}\n", {"model.weights_dtype: expected one of native, f32, f16, bf16, got \"int3\""});
}

TEST_F(ConfigErrors, UnknownDrafterListsKnownOnes) {
  expect("draft:\n  spec: medusa\n", {"x.yaml:2: draft.spec: unknown drafter 'medusa'", "known: none, ngram, model, early-exit, layerskip"});
  expect("draft: {spec: {max: 3}}\n", {"draft.spec: missing 'name'"});
}

TEST_F(ConfigErrors, UnknownStrategyListsKnownOnes) {
  expect("strategy:\n  name: turbo\n", {"x.yaml:2: strategy.name: unknown strategy 'turbo'", "known: early-exit, layerskip"});
  expect("strategy: {name: early-exit, layer: 3}\n",
         {"strategy.layer: unknown key 'layer' for strategy 'early-exit'", "accepted: name, layers"});
}

TEST_F(ConfigErrors, BadGridPath) {
  expect("grid:\n  drafts.k: [2, 4]\n", {"x.yaml:2: grid.drafts.k: unknown field 'drafts'", "top-level fields: model, data"});
  // A key below a real field: reported at the grid value that introduced it.
  expect("grid:\n  draft.kk: [2, 4]\n", {"x.yaml:2: grid.draft.kk[0]: unknown key 'kk'", "accepted: spec, k"});
  expect("grid:\n  draft..k: [2]\n", {"grid.draft..k", "invalid path 'draft..k': empty key"});
  expect("grid:\n  draft.k: []\n", {"grid.draft.k: expected a non-empty list of values"});
}

TEST_F(ConfigErrors, BadGridValueNamesTheListElement) {
  expect("grid:\n  draft.k: [2,\n    x]\n", {"x.yaml:3: grid.draft.k[1]: expected an integer in [1, 16], got \"x\""});
  expect("grid:\n  draft.spec: [ngram, medusa]\n", {"grid.draft.spec[1]: unknown drafter 'medusa'"});
}

TEST_F(ConfigErrors, ZipLengthMismatch) {
  expect("zip:\n  draft.spec: [ngram, \"early-exit:layers=4\"]\n  draft.k: [2, 4, 6]\n",
         {"x.yaml:3: zip.draft.k: zip lists must have equal lengths", "zip.draft.spec has 2 values, zip.draft.k has 3"});
  expect("zip:\n  draft.k: [2, 4]\n  label: [a]\n", {"zip.label: zip lists must have equal lengths"});
}

TEST_F(ConfigErrors, FieldVariedTwice) {
  expect("grid: {draft.k: [2, 4]}\nzip: {draft.k: [6, 8]}\n", {"zip.draft.k: the field draft.k is also varied by grid.draft.k"});
  expect("cells:\n  - {draft: {k: 2}}\ngrid: {draft: [{k: 4}]}\n", {"grid.draft: the field draft is also set by cells[0].draft.k"});
}

TEST_F(ConfigErrors, IncludeCycle) {
  dir_.write("b.yaml", "include: a.yaml\n");
  const std::string a = dir_.write("a.yaml", "include: b.yaml\n");
  expect_error([&] { load_study(a); }, {"b.yaml:1: include: include cycle:", "a.yaml -> ", "b.yaml -> ", "a.yaml"});
  const std::string self = dir_.write("self.yaml", "include: [self.yaml]\n");
  expect_error([&] { load_study(self); }, {"self.yaml:1: include[0]: include cycle"});
}

TEST_F(ConfigErrors, MissingInclude) {
  expect("include: nope.yaml\n", {"x.yaml:1: include: cannot read config", "nope.yaml", "no such file"});
  expect("include: [{a: 1}]\n", {"x.yaml:1: include[0]: expected a file name"});
}

TEST_F(ConfigErrors, ErrorInIncludedFileNamesThatFile) {
  dir_.write("frag/common.yaml", "model:\n  threads: -1\n");
  expect("include: frag/common.yaml\n", {"common.yaml:2: model.threads: expected an integer in [0, 1024], got \"-1\""});
}

TEST_F(ConfigErrors, BadSet) {
  expect("", {"--set draft.k: expected KEY.PATH=VALUE"}, {"draft.k"});
  expect("", {"--set draft.k=abc: draft.k: expected an integer in [1, 16], got \"abc\""}, {"draft.k=abc"});
  expect("draft: {spec: ngram}\n", {"--set draft.spec.x=1: draft.spec is the value \"ngram\", so it has no key 'x'"},
         {"draft.spec.x=1"});
  expect("", {"--set draft.k=[1: the value is not valid YAML"}, {"draft.k=[1"});
  expect("", {"--set .k=1: invalid path '.k': empty key"}, {".k=1"});
  expect("", {"--set drafts.k=2: drafts.k: unknown key 'drafts'"}, {"drafts.k=2"});
}

TEST_F(ConfigErrors, InvalidYaml) { expect("draft: {k: 4\n", {"x.yaml:", "invalid YAML"}); }

// Found by study_fuzz: a complex key ("? [a]: ...") used to escape as a yaml-cpp exception.
TEST_F(ConfigErrors, KeysMustBeNames) {
  expect("grid:\n? [draft.spec]\n: [ngram]\n", {"x.yaml:2: a key must be a name, got a list [draft.spec] as a key"});
  expect("model:\n  ? {a: 1}\n  : 2\n", {"x.yaml:2: a key must be a name, got a map {a: 1} as a key under 'model'"});
  expect("draft: {~: 4}\n", {"x.yaml:1: a key must be a name, got null as a key under 'draft'"});
  expect("", {"--set draft={[1]: 2}: a key must be a name, got a list [1] as a key under 'draft'"}, {"draft={[1]: 2}"});
}

TEST_F(ConfigErrors, CrossFieldRules) {
  expect("verify: {acceptance: typical}\n", {"verify.acceptance: typical acceptance needs a drafter"});
  expect("data: {kind: text}\n", {"data.kind: data.path is required for kind: text"});
  expect("data: {split: lines}\n", {"data.split: only used with kind: text"});
  expect("metrics: {perplexity: {ctx: 64, stride: 128}}\n", {"metrics.perplexity.stride: expected stride <= ctx (64), got 128"});
}

TEST_F(ConfigErrors, BadCells) {
  expect("cells:\n  - labl: x\n", {"x.yaml:2: cells[0].labl: unknown key 'labl' (accepted: label, model"});
  expect("cells: {a: 1}\n", {"cells: expected a non-empty list of cells"});
  expect("cells:\n  - {draft: {k: 2}}\n  - {draft: {k: 2}}\n", {"cells[1]", "same configuration as the cell at", "cells[0]"});
}

TEST_F(ConfigErrors, UnknownCategoryListsKnownOnes) {
  const std::string p = dir_.write("x.yaml", "data:\n  categories: [qa, poetry]\n");
  const config::Study s = load_study(p);
  expect_error([&] { load_prompts(s.cells[0].cfg.data, s.cells[0].origins); },
               {"x.yaml:2: data.categories[1]: unknown category 'poetry'", "known: mt_bench, translation", "writing"});
}

// ---- grids ------------------------------------------------------------------------------------------

TEST(ConfigGrid, CartesianProductFirstAxisOutermost) {
  ScratchDir d;
  const auto s = load_study(d.write("g.yaml", "grid:\n  draft.spec: [ngram, \"layerskip:skip=3\"]\n  draft.k: [2, 4, 6]\n"));
  ASSERT_EQ(s.cells.size(), 6u);
  const std::vector<std::string> labels = {"ngram, k=2", "ngram, k=4", "ngram, k=6",
                                           "layerskip:skip=3, k=2", "layerskip:skip=3, k=4", "layerskip:skip=3, k=6"};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(s.cells[i].label, labels[i]);
    EXPECT_EQ(s.cells[i].cfg.draft.k, 2 + 2 * static_cast<int64_t>(i % 3));
    EXPECT_EQ(s.cells[i].cfg.draft.spec, i < 3 ? "ngram" : "layerskip:skip=3");
    ASSERT_EQ(s.cells[i].overrides.size(), 2u);
    EXPECT_EQ(s.cells[i].overrides[1].source, "grid.draft.k[" + std::to_string(i % 3) + "]");
  }
  EXPECT_EQ(s.axes, (std::vector<std::string>{"draft.spec", "draft.k"}));
  ASSERT_EQ(s.baselines.size(), 1u);  // the decoding fields do not change the baseline
  for (const auto& c : s.cells) EXPECT_EQ(c.baseline_id, s.baselines[0].id);
}

TEST(ConfigGrid, ZipIsLockStepWithLabels) {
  ScratchDir d;
  const auto s = load_study(d.write(
      "z.yaml", "zip:\n  draft.spec: [ngram, \"early-exit:layers=8\", \"layerskip:skip=10-17\"]\n  draft.k: [6, 2, 3]\n"
                "  label: [lookup, exit8, skip8]\ngrid:\n  generation.max_tokens: [16, 32]\n"));
  ASSERT_EQ(s.cells.size(), 6u);
  EXPECT_EQ(s.cells[0].label, "max_tokens=16, lookup");
  EXPECT_EQ(s.cells[0].cfg.draft.k, 6);
  EXPECT_EQ(s.cells[1].label, "max_tokens=16, exit8");
  EXPECT_EQ(s.cells[1].cfg.draft.spec, "early-exit:layers=8");
  EXPECT_EQ(s.cells[1].cfg.draft.k, 2);
  EXPECT_EQ(s.cells[5].label, "max_tokens=32, skip8");
  EXPECT_EQ(s.cells[5].cfg.generation.max_tokens, 32);
  EXPECT_EQ(s.baselines.size(), 2u);  // one per max_tokens
  EXPECT_NE(s.cells[0].baseline_id, s.cells[5].baseline_id);
  EXPECT_EQ(s.baselines[1].label, "baseline (max_tokens=32)");
}

TEST(ConfigGrid, CellsTimesGridAndMapSpecs) {
  ScratchDir d;
  const auto s = load_study(d.write("c.yaml",
                                    "draft: {k: 3}\n"
                                    "cells:\n"
                                    "  - {label: lookup, draft: {spec: {name: ngram, max: 4}}}\n"
                                    "  - draft: {spec: {name: layerskip, skip: [10, 11, 12]}}\n"
                                    "  - {label: plain}\n"
                                    "grid:\n  seed: [1, 2]\n"));
  ASSERT_EQ(s.cells.size(), 6u);
  EXPECT_EQ(s.cells[0].label, "lookup, seed=1");
  EXPECT_EQ(s.cells[0].cfg.draft.spec, "ngram:max=4");
  EXPECT_EQ(s.cells[0].cfg.draft.k, 3);  // merged with the file's draft map
  EXPECT_EQ(s.cells[2].label, "layerskip:skip=[10, 11, 12], seed=1");
  EXPECT_EQ(s.cells[2].cfg.draft.spec, "layerskip:skip=10,11,12");
  EXPECT_EQ(s.cells[4].label, "plain, seed=1");
  EXPECT_TRUE(s.cells[4].cfg.draft.none());
  // A plain-decoding cell has the baseline's configuration (the runner reuses its measurements).
  EXPECT_EQ(s.cells[4].hash, s.baseline_of(s.cells[4])->hash);
}

TEST(ConfigGrid, IdsAreStableDistinctAndFollowTheConfiguration) {
  ScratchDir d;
  const std::string p = d.write("g.yaml", "grid:\n  draft.spec: [ngram, \"early-exit:layers=8\"]\n  draft.k: [2, 4]\n");
  const auto a = load_study(p), b = load_study(p);
  std::vector<std::string> ids;
  for (size_t i = 0; i < a.cells.size(); ++i) {
    EXPECT_EQ(a.cells[i].id, b.cells[i].id);
    ids.push_back(a.cells[i].id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
  EXPECT_EQ(a.cells[0].id.rfind("ngram-k-2-", 0), 0u) << a.cells[0].id;
  EXPECT_EQ(a.cells[2].id.rfind("early-exit-layers-8-k-2-", 0), 0u) << a.cells[2].id;
  // Any change of the configuration changes every id (results of another configuration are not reused).
  const auto c = load_study(p, {"generation.max_tokens=17"});
  EXPECT_NE(a.cells[0].id, c.cells[0].id);
  EXPECT_EQ(a.cells[0].label, c.cells[0].label);
}

TEST(ConfigGrid, BaselinePerModel) {
  ScratchDir d;
  const auto s = load_study(d.write("m.yaml", "grid:\n  model.weights_dtype: [native, f16]\n  draft.spec: [ngram, \"early-exit:layers=8\"]\n"));
  ASSERT_EQ(s.baselines.size(), 2u);
  EXPECT_EQ(s.baselines[0].label, "baseline (weights_dtype=native)");
  EXPECT_EQ(s.baselines[1].cfg.model.weights_dtype, "f16");
  EXPECT_TRUE(s.baselines[1].cfg.draft.none());
  for (const auto& c : s.cells) EXPECT_EQ(s.baseline_of(c)->cfg.model.weights_dtype, c.cfg.model.weights_dtype);
  const auto none = load_study(d.write("n.yaml", "baseline: none\ndraft: {spec: ngram}\n"));
  EXPECT_TRUE(none.baselines.empty());
  EXPECT_TRUE(none.cells[0].baseline_id.empty());
  EXPECT_EQ(none.cells[0].label, "ngram, k=4");
}

// ---- layering and the resolved dump ---------------------------------------------------------------

TEST(ConfigLoad, DefaultsThenIncludesThenFileThenSet) {
  ScratchDir d;
  d.write("frag/model.yaml", "model: {path: gemma3-270m, threads: 2}\ngeneration: {max_tokens: 50}\n");
  d.write("frag/data.yaml", "include: ../frag/model.yaml\ndata: {limit: 7}\n");
  const std::string p = d.write("s.yaml", "include: [frag/data.yaml]\nmodel: {threads: 1}\ndraft: {spec: ngram}\n");
  const auto s = load_study(p, {"generation.max_tokens=9", "data.categories=[qa, rag]"});
  const auto& c = s.cells[0].cfg;
  EXPECT_EQ(c.model.path, "gemma3-270m");  // include
  EXPECT_EQ(c.model.threads, 1);           // file over include
  EXPECT_EQ(c.data.limit, 7);
  EXPECT_EQ(c.generation.max_tokens, 9);   // --set over everything
  EXPECT_EQ(c.data.categories, (std::vector<std::string>{"qa", "rag"}));
  EXPECT_EQ(c.verify.acceptance, "exact");  // default
  EXPECT_EQ(c.data.per_category, 0);
  EXPECT_EQ(s.files.size(), 3u);
  EXPECT_EQ(s.cfg.name, "s");  // default name: the file's stem
}

TEST(ConfigLoad, StrategyAsSpecStringOrMap) {
  ScratchDir d;
  const auto a = load_study(d.write("a.yaml", "strategy: \"layerskip:skip=3,5\"\n"));
  const auto b = load_study(d.write("b.yaml", "strategy: {name: layerskip, skip: \"3,5\"}\n"));
  EXPECT_EQ(a.cells[0].hash, b.cells[0].hash);
  EXPECT_EQ(a.cells[0].cfg.strategy.name, "layerskip");
  EXPECT_EQ(a.cells[0].label, "strategy layerskip");
}

TEST(ConfigLoad, DumpLoadsBackToTheSameCells) {
  ScratchDir d;
  const std::string p = d.write("g.yaml",
                                "name: demo\ndata: {limit: 3}\n"
                                "cells:\n  - {label: a, draft: {spec: ngram}}\n  - {label: b, draft: {spec: \"early-exit:layers=8\"}}\n"
                                "grid:\n  draft.k: [2, 4]\n");
  const auto s = load_study(p, {"sampling.temperature=0.7"});
  const std::string dumped = config::dump_study(s);
  EXPECT_NE(dumped.find("temperature: 0.7"), std::string::npos) << dumped;
  EXPECT_NE(dumped.find("# 4 cells (id: label):"), std::string::npos) << dumped;
  const auto r = load_study(d.write("dump.yaml", dumped));
  ASSERT_EQ(r.cells.size(), s.cells.size());
  for (size_t i = 0; i < s.cells.size(); ++i) {
    EXPECT_EQ(r.cells[i].id, s.cells[i].id);
    EXPECT_EQ(r.cells[i].label, s.cells[i].label);
  }
  EXPECT_EQ(r.cfg.name, "demo");
}

// ---- prompt selection ---------------------------------------------------------------------------

TEST(ConfigData, SpecBenchLimitSpreadsOverTasks) {
  ScratchDir d;
  const auto s = load_study(d.write("d.yaml", "data: {limit: 20}\n"));
  const auto ps = load_prompts(s.cells[0].cfg.data, s.cells[0].origins);
  ASSERT_EQ(ps.size(), 20u);
  std::map<std::string, int> n;
  for (const auto& p : ps) ++n[p.category];
  EXPECT_EQ(n.size(), 6u);
  EXPECT_EQ(n["mt_bench"], 4);
  EXPECT_EQ(n["translation"], 4);
  EXPECT_EQ(n["rag"], 3);
  EXPECT_EQ(ps[0].category, "mt_bench");
  EXPECT_EQ(ps[1].category, "translation");

  const auto sh = load_study(d.write("sh.yaml", "data: {categories: [qa, writing], per_category: 3, shuffle: true, seed: 5}\n"));
  const auto a = load_prompts(sh.cells[0].cfg.data, sh.cells[0].origins);
  const auto b = load_prompts(sh.cells[0].cfg.data, sh.cells[0].origins);
  ASSERT_EQ(a.size(), 6u);  // writing is an MT-bench category of task mt_bench
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].id, b[i].id);
  const auto unshuffled = load_study(d.write("u.yaml", "data: {categories: [qa], per_category: 10}\n"));
  const auto u = load_prompts(unshuffled.cells[0].cfg.data, unshuffled.cells[0].origins);
  bool differs = false;
  for (size_t i = 0; i < 3; ++i) differs |= a[2 * i + 1].id != u[i].id;  // interleaved: qa, writing, qa, ...
  EXPECT_TRUE(differs);
}

TEST(ConfigData, TextParagraphsLinesAndJsonl) {
  ScratchDir d;
  const std::string txt = d.write("t.txt", "first para\nline two\n\n\nsecond\n\nx\n");
  auto load = [&](const std::string& yaml) {
    const auto s = load_study(d.write("t.yaml", yaml));
    return load_prompts(s.cells[0].cfg.data, s.cells[0].origins);
  };
  const auto paras = load("data: {kind: text, path: " + txt + "}\n");
  ASSERT_EQ(paras.size(), 3u);
  EXPECT_EQ(paras[0].text, "first para\nline two");
  EXPECT_EQ(paras[1].id, "line 5");
  const auto lines = load("data: {kind: text, path: " + txt + ", split: lines, min_chars: 3}\n");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].text, "line two");
  const std::string jl = d.write("q.jsonl", "{\"question\": \"a?\", \"category\": \"x\", \"id\": 7}\n{\"question\": \"b?\"}\n");
  const auto q = load("data: {kind: jsonl, path: " + jl + ", interleave: false}\n");
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].id, "7");
  EXPECT_EQ(q[1].category, "all");
  expect_error([&] { load("data: {kind: jsonl, path: " + jl + ", field: prompt}\n"); },
               {"data.path:", "q.jsonl:1: no field 'prompt' (set data.field)"});
}

}  // namespace
}  // namespace specula
