#include "experiments/datasets.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/spec_string.h"
#include "core/tokenizer.h"
#include "experiments/cli.h"
#include "experiments/spec_bench_data.h"

namespace specula {

std::string default_perplexity_data() {
  return (std::filesystem::path(SPECULA_SOURCE_DIR) / "../shared/data/wikitext2_wiki.test.raw").lexically_normal().string();
}

std::string data_file(const config::DataCfg& d) {
  if (!d.path.empty() || d.kind != "spec_bench") return d.path;
  return std::filesystem::path(spec_bench_default_path()).lexically_normal().string();
}

std::vector<Token> prompt_tokens(const Model& model, const std::string& text, bool chat) {
  if (chat) return chat_prompt_tokens(model, text);
  return model.tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
}

namespace {

struct Raw {
  std::string id, category, text;
  std::vector<std::string> aliases;  // other names the category filter accepts (a Spec-Bench file category)
};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<Raw> read_text(const config::DataCfg& d) {
  const std::string text = cli::read_text_file(d.path);
  std::vector<Raw> out;
  std::istringstream in(text);
  std::string line, para;
  int64_t ln = 0, start = 0;
  auto flush = [&] {
    const std::string t = trim(para);
    if (static_cast<int64_t>(t.size()) >= d.min_chars) out.push_back({fmt::format("line {}", start), "text", t, {}});
    para.clear();
  };
  while (std::getline(in, line)) {
    ++ln;
    if (d.split == "lines") {
      para = line;
      start = ln;
      flush();
      continue;
    }
    if (trim(line).empty()) {
      if (!para.empty()) flush();
      continue;
    }
    if (para.empty()) start = ln;
    para += line + "\n";
  }
  if (!para.empty()) flush();
  return out;
}

std::vector<Raw> read_jsonl(const config::DataCfg& d) {
  std::ifstream in(d.path);
  if (!in) fail("cannot read '{}': no such file or not readable", d.path);
  std::vector<Raw> out;
  std::string line;
  int64_t ln = 0;
  while (std::getline(in, line)) {
    ++ln;
    if (trim(line).empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail("{}:{}: not valid JSON ({})", d.path, ln, e.what());
    }
    if (!j.is_object() || !j.contains(d.field)) fail("{}:{}: no field '{}' (set data.field)", d.path, ln, d.field);
    nlohmann::json f = j[d.field];
    if (f.is_array() && !f.empty()) f = f[0];
    if (!f.is_string()) fail("{}:{}: field '{}' is not a string (or a list of strings)", d.path, ln, d.field);
    Raw r;
    r.text = f.get<std::string>();
    r.category = j.contains(d.category_field) && j[d.category_field].is_string() ? j[d.category_field].get<std::string>() : "all";
    for (const char* idk : {"question_id", "task_id", "id"})
      if (j.contains(idk)) {
        r.id = j[idk].is_string() ? j[idk].get<std::string>() : j[idk].dump();
        break;
      }
    if (r.id.empty()) r.id = fmt::format("line {}", ln);
    out.push_back(std::move(r));
  }
  if (out.empty()) fail("'{}' holds no prompts", d.path);
  return out;
}

std::vector<Raw> read_spec_bench(const config::DataCfg& d) {
  std::vector<Raw> out;
  for (const auto& p : load_spec_bench(data_file(d))) {
    Raw r{std::to_string(p.id), p.task, p.text, {}};
    if (p.category != p.task) r.aliases.push_back(p.category);
    out.push_back(std::move(r));
  }
  return out;
}

// Portable Fisher-Yates (std::shuffle's sequence differs between standard libraries).
template <typename T>
void shuffle_portable(std::vector<T>& v, uint64_t seed) {
  Rng rng(seed);
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.uniform() * static_cast<double>(i));
    std::swap(v[i - 1], v[std::min(j, i - 1)]);
  }
}

}  // namespace

std::vector<Prompt> load_prompts(const config::DataCfg& d, const config::Origins& o, const std::string& path) {
  std::vector<Raw> raw;
  try {
    raw = d.kind == "text" ? read_text(d) : d.kind == "jsonl" ? read_jsonl(d) : read_spec_bench(d);
  } catch (const Error& e) {
    fail("{}: {}", o.where(config::join_path(path, "path")), e.what());
  }
  // Categories in order of first appearance (Spec-Bench: its task order).
  std::vector<std::string> order;
  if (d.kind == "spec_bench") order = spec_bench_tasks();
  std::vector<std::string> known;
  for (const auto& r : raw) {
    if (std::find(order.begin(), order.end(), r.category) == order.end()) order.push_back(r.category);
    for (const auto& a : r.aliases)
      if (std::find(known.begin(), known.end(), a) == known.end()) known.push_back(a);
  }
  known.insert(known.begin(), order.begin(), order.end());
  for (size_t i = 0; i < d.categories.size(); ++i)
    if (std::find(known.begin(), known.end(), d.categories[i]) == known.end())
      fail("{}: unknown category '{}' in {} (known: {})", o.where(config::index_path(config::join_path(path, "categories"), i)),
           d.categories[i], data_file(d), join(known, ", "));
  auto wanted = [&](const Raw& r) {
    if (d.categories.empty()) return true;
    for (const auto& c : d.categories)
      if (c == r.category || std::find(r.aliases.begin(), r.aliases.end(), c) != r.aliases.end()) return true;
    return false;
  };
  std::map<std::string, std::vector<Raw>> groups;
  for (auto& r : raw)
    if (wanted(r)) groups[r.category].push_back(std::move(r));
  std::vector<std::vector<Raw>> lists;
  for (const auto& c : order) {
    auto it = groups.find(c);
    if (it == groups.end()) continue;
    auto& g = it->second;
    if (d.shuffle) shuffle_portable(g, static_cast<uint64_t>(d.seed) * 1000003u + lists.size());
    if (d.per_category > 0 && static_cast<int64_t>(g.size()) > d.per_category) g.resize(static_cast<size_t>(d.per_category));
    lists.push_back(std::move(g));
  }
  std::vector<Raw> sel;
  if (d.interleave) {
    for (size_t i = 0;; ++i) {
      bool any = false;
      for (auto& l : lists)
        if (i < l.size()) {
          sel.push_back(std::move(l[i]));
          any = true;
        }
      if (!any) break;
    }
  } else {
    for (auto& l : lists)
      for (auto& r : l) sel.push_back(std::move(r));
  }
  if (d.limit > 0 && static_cast<int64_t>(sel.size()) > d.limit) sel.resize(static_cast<size_t>(d.limit));
  if (sel.empty()) fail("{}: no prompts selected from {}", o.where(path), data_file(d));
  std::vector<Prompt> out;
  for (size_t i = 0; i < sel.size(); ++i)
    out.push_back({static_cast<int64_t>(i), std::move(sel[i].id), std::move(sel[i].category), std::move(sel[i].text)});
  return out;
}

}  // namespace specula
