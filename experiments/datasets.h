#pragma once
// Prompt sets for experiment runs (config key `data`):
//   spec_bench  Spec-Bench questions (../shared/data/spec_bench_question.jsonl by default; the MT-bench file
//               has the same format); categories = the six Spec-Bench tasks (mt_bench, translation,
//               summarization, qa, math_reasoning, rag) or the file's own category names
//   text        any text file: one prompt per paragraph (blank-line separated) or per line
//   jsonl       one JSON object per line: the prompt is `field` (a list gives its first element), the
//               category `category_field`
// Selection, in this order: category filter, shuffle within each category (seeded, portable), at most
// per_category per category, round-robin over categories (interleave) or file order, then limit.
#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"
#include "experiments/config.h"

namespace specula {

struct Prompt {
  int64_t index = 0;     // position in the selected list
  std::string id;        // question_id / line number in the file
  std::string category;  // Spec-Bench task, file category, or "text"
  std::string text;
};

// Errors name the data section's origin (`where("data.path")` etc.) and the file.
std::vector<Prompt> load_prompts(const config::DataCfg& d, const config::Origins& o, const std::string& path = "data");
// The resolved file of a data config (the default Spec-Bench file when path is empty).
std::string data_file(const config::DataCfg& d);
// Token ids of a prompt: the model's chat template (one user turn + generation prompt) when `chat`, else the
// plain text with the tokenizer's BOS.
std::vector<Token> prompt_tokens(const Model& model, const std::string& text, bool chat);
// Default perplexity text: ../shared/data/wikitext2_wiki.test.raw.
std::string default_perplexity_data();

}  // namespace specula
