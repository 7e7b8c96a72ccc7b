#pragma once
// Drafters built from a SPEC string (`--draft SPEC`):
//   ngram[:min=1,max=3,branches=1]                      prompt lookup; branches>1 = tree of candidates
//   model:path=FILE_OR_NAME[,weights_dtype=native|f32|f16|bf16,branches=1]   separate draft model
//   <strategy>[:...,branches=1]                         self-draft through a registered Strategy:
//       early-exit:layers=L, layerskip:skip=3,5,10-20
// `branches` > 1 makes a tree (see NgramDrafter / LmDrafter). Unknown names list the known ones; unknown
// keys are errors naming the key.
#include <memory>
#include <string>
#include <vector>

#include "draft/draft.h"

namespace specula {

struct DrafterOptions {
  KvDType kv_dtype = KvDType::F16;  // cache type of a separate draft model
};

// Names accepted as the SPEC name: "ngram", "model" and every registered strategy.
std::vector<std::string> drafter_names();
// One help line per drafter kind (for --help).
std::string drafter_help();

std::unique_ptr<Drafter> make_drafter(const std::string& spec, Model& target, const DrafterOptions& opt);

}  // namespace specula
