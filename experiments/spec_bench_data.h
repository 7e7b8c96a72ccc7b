#pragma once
// The Spec-Bench question set (../shared/data/spec_bench_question.jsonl): 480 prompts, 80 per task.
// Spec-Bench's six tasks: the 80 MT-bench questions (categories writing, roleplay, ... humanities) form
// "mt_bench"; translation, summarization, qa, math_reasoning and rag are their own category. Only the
// first turn of each question is used.
#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"

namespace specula {

struct SpecBenchPrompt {
  int64_t id = 0;
  std::string category;  // as in the file
  std::string task;      // Spec-Bench task: mt_bench, translation, summarization, qa, math_reasoning, rag
  std::string text;      // first turn
};

// Default location, relative to the source tree.
std::string spec_bench_default_path();
// Reads the file; Error naming it if unreadable or malformed.
std::vector<SpecBenchPrompt> load_spec_bench(const std::string& path);
// The six task names in Spec-Bench's order.
const std::vector<std::string>& spec_bench_tasks();
// The first `per_task` prompts of each task (all when per_task <= 0), in file order.
std::vector<SpecBenchPrompt> select_per_task(const std::vector<SpecBenchPrompt>& all, int64_t per_task);
// Chat-formatted prompt tokens (the model's chat template, one user turn, generation prompt).
std::vector<Token> chat_prompt_tokens(const Model& model, const std::string& text);

}  // namespace specula
