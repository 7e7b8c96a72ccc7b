#include "experiments/spec_bench_data.h"

#include <algorithm>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"

namespace specula {

std::string spec_bench_default_path() { return std::string(SPECULA_SOURCE_DIR) + "/../shared/data/spec_bench_question.jsonl"; }

const std::vector<std::string>& spec_bench_tasks() {
  static const std::vector<std::string> t = {"mt_bench", "translation", "summarization", "qa", "math_reasoning", "rag"};
  return t;
}

std::vector<SpecBenchPrompt> load_spec_bench(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read Spec-Bench questions '{}': no such file or not readable", path);
  std::vector<SpecBenchPrompt> out;
  std::string line;
  int64_t ln = 0;
  const auto& tasks = spec_bench_tasks();
  while (std::getline(in, line)) {
    ++ln;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail("{}:{}: not valid JSON ({})", path, ln, e.what());
    }
    if (!j.contains("category") || !j.contains("turns") || !j["turns"].is_array() || j["turns"].empty())
      fail("{}:{}: expected fields 'category' and a non-empty 'turns' list", path, ln);
    SpecBenchPrompt p;
    p.id = j.value("question_id", ln);
    p.category = j["category"].get<std::string>();
    p.text = j["turns"][0].get<std::string>();
    p.task = std::find(tasks.begin(), tasks.end(), p.category) != tasks.end() ? p.category : "mt_bench";
    out.push_back(std::move(p));
  }
  if (out.empty()) fail("'{}' holds no questions", path);
  return out;
}

std::vector<SpecBenchPrompt> select_per_task(const std::vector<SpecBenchPrompt>& all, int64_t per_task) {
  if (per_task <= 0) return all;
  std::map<std::string, int64_t> n;
  std::vector<SpecBenchPrompt> out;
  for (const auto& p : all)
    if (n[p.task]++ < per_task) out.push_back(p);
  return out;
}

std::vector<Token> chat_prompt_tokens(const Model& model, const std::string& text) {
  const Tokenizer& tok = model.tokenizer();
  return tok.encode(tok.apply_chat_template({{"user", text}}, true), /*add_special=*/true, /*parse_special=*/true);
}

}  // namespace specula
