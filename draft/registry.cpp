#include "draft/registry.h"

#include "core/error.h"
#include "core/model_registry.h"
#include "core/spec_string.h"
#include "draft/model_drafter.h"
#include "draft/ngram_drafter.h"
#include "draft/self_drafter.h"
#include "sparsity/strategy.h"

namespace specula {

std::vector<std::string> drafter_names() {
  std::vector<std::string> n = {"ngram", "model"};
  for (const auto& s : strategy_registry().names()) n.push_back(s);
  return n;
}

std::string drafter_help() {
  std::string h =
      "  ngram[:min=1,max=3,branches=1,per_match=0,conf=0]  prompt lookup: continue the latest earlier occurrence of the last "
      "max..min tokens; branches>1 = token tree of that many candidate continuations; per_match=R cuts a continuation "
      "found through an n-token match to max(1, R*n) tokens; conf=P (e.g. ngram:max=8,conf=0.15 with --k 4): adaptive "
      "length, draft while the estimated chance that the whole draft is accepted (learnt online per match length and "
      "agreement of earlier occurrences) stays >= P\n"
      "  model:path=FILE_OR_NAME[,weights_dtype=native|f32|f16|bf16,branches=1]  separate draft model with the same "
      "vocabulary\n";
  for (const auto& f : strategy_registry().all()) h += "  " + f.help + " (self-draft)[,branches=1]\n";
  h += "  branches=B (model and self drafts): top-B (or B sampled without replacement) first tokens, each extended as a "
       "chain of k: a tree of B*k nodes";
  return h;
}

std::unique_ptr<Drafter> make_drafter(const std::string& text, Model& target, const DrafterOptions& opt) {
  SpecString s = SpecString::parse(text);
  if (s.name == "ngram") {
    NgramConfig c;
    c.min_ngram = s.take_int("min", 1, 1, 64);
    c.max_ngram = s.take_int("max", 3, 1, 64);
    c.branches = s.take_int("branches", 1, 1, 64);
    c.per_match = s.take_double("per_match", 0, 0, 64);
    c.conf = s.take_double("conf", 0, 0, 1);
    s.expect_empty({"min", "max", "branches", "per_match", "conf"});
    return std::make_unique<NgramDrafter>(c);
  }
  LmDraftConfig lc;
  lc.branches = s.take_int("branches", 1, 1, 64);
  if (s.name == "model") {
    const std::string path = s.take_required("path");
    LoadOptions lo;
    lo.weights_dtype = parse_weights_dtype(s.take_string("weights_dtype", "native"));
    lo.device = target.device();  // the draft model runs where the target runs
    s.expect_empty({"path", "weights_dtype", "branches"});
    auto m = Model::load(resolve_model(path), lo);
    return std::make_unique<ModelDrafter>(std::move(m), target, lc, opt.kv_dtype);
  }
  if (strategy_registry().find(s.name)) return std::make_unique<SelfDrafter>(target, make_strategy(s, target.config()), lc);
  fail("unknown drafter '{}' in --draft '{}' (known: {})", s.name, text, join(drafter_names(), ", "));
}

}  // namespace specula
