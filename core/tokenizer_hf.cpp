// Tokenizer::from_hf_json: a Hugging Face tokenizer.json (+ tokenizer_config.json) mapped onto the
// same TokenizerSpec that llama.cpp's converter would write into a GGUF file.
//  * Byte-level BPE (pre_tokenizer ByteLevel, possibly after Digits or a Split regex): model "gpt2",
//    with the pre-tokenizer name recognised from the pre_tokenizer structure.
//  * SentencePiece-style BPE (Metaspace / Replace(" ", "▁") normalizer, byte_fallback): model "llama";
//    scores are derived from the merge ranks (earlier merge = higher score), so the score-ordered
//    SentencePiece merge reproduces the BPE merge order.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"

namespace specula {

namespace {

using nlohmann::json;

constexpr std::string_view kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

json read_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot open file", path);
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    fail("{}: malformed JSON: {}", path, e.what());
  }
}

// A token given as "text" or {"content": "text", ...} (tokenizer_config.json style).
std::optional<std::string> token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

std::string type_of(const json& node) {
  return node.is_object() && node.contains("type") && node["type"].is_string() ? node["type"].get<std::string>() : "";
}

// The pre-tokenizer steps, flattening a Sequence.
std::vector<json> steps_of(const json& node) {
  if (node.is_null()) return {};
  if (type_of(node) == "Sequence") {
    for (const char* key : {"pretokenizers", "normalizers"})
      if (node.contains(key) && node[key].is_array()) return node[key].get<std::vector<json>>();
    return {};
  }
  return {node};
}

bool flag(const json& node, const char* key, bool fallback) {
  return node.contains(key) && node[key].is_boolean() ? node[key].get<bool>() : fallback;
}

std::string byte_level_pre(const std::string& path, const std::vector<json>& steps) {
  auto describe = [&] {
    std::string d;
    for (const json& s : steps) {
      if (!d.empty()) d += ", ";
      d += type_of(s);
    }
    return d;
  };
  auto is_byte_level = [&](const json& s, bool use_regex) {
    if (type_of(s) != "ByteLevel") return false;
    if (flag(s, "add_prefix_space", false))
      fail("{}: ByteLevel pre-tokenizer with add_prefix_space=true is not supported", path);
    return flag(s, "use_regex", true) == use_regex;
  };
  if (steps.size() == 1 && is_byte_level(steps[0], true)) return "gpt-2";
  if (steps.size() == 2 && type_of(steps[0]) == "Digits" && flag(steps[0], "individual_digits", false) &&
      is_byte_level(steps[1], true))
    return "smollm";
  if (steps.size() == 2 && type_of(steps[0]) == "Split" && is_byte_level(steps[1], false)) {
    const json& pat = steps[0].contains("pattern") ? steps[0]["pattern"] : json();
    const std::string re = pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()
                               ? pat["Regex"].get<std::string>()
                               : std::string();
    if (re == kLlama3Regex) return "llama3";
    if (re == kQwen2Regex) return "qwen2";
    fail("{}: unsupported pre_tokenizer Split regex '{}'", path, re);
  }
  fail("{}: unsupported byte-level pre_tokenizer sequence [{}]", path, describe());
}

bool is_byte_token(const std::string& t) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

}  // namespace

Tokenizer Tokenizer::from_hf_json(const std::string& tokenizer_json_path,
                                  const std::string& tokenizer_config_json_path_or_empty) {
  const std::string& path = tokenizer_json_path;
  const json j = read_json(path);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    fail("{}: not a tokenizer.json (no \"model\" object)", path);
  const json& model = j["model"];
  const std::string mtype = type_of(model).empty() && model.contains("merges") ? "BPE" : type_of(model);
  if (mtype != "BPE") fail("{}: unsupported tokenizer model type '{}' (only BPE is supported)", path, mtype);
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("{}: model.vocab is missing or not an object", path);

  // ---- vocabulary: model.vocab plus added_tokens
  static const json no_added = json::array();
  const json& added_json = j.contains("added_tokens") ? j["added_tokens"] : no_added;
  if (!added_json.is_array()) fail("{}: added_tokens is not an array", path);
  std::vector<std::optional<std::string>> slots;
  // Ids must be contiguous from 0, so none can reach the number of entries listed (vocab plus added
  // tokens, an upper bound since added tokens may repeat vocab entries). Checked before the slots are
  // sized by an id, so that an id like 888888882 in a small file is an error, not a huge allocation.
  const size_t listed = model["vocab"].size() + added_json.size();
  auto put = [&](int64_t id, const std::string& text) {
    if (id < 0 || static_cast<uint64_t>(id) >= listed)
      fail("{}: token id {} of '{}' is out of range: the file lists {} tokens, so ids must be in [0, {})", path, id, text,
           listed, listed);
    if (static_cast<size_t>(id) >= slots.size()) slots.resize(id + 1);
    slots[id] = text;
  };
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer()) fail("{}: model.vocab['{}'] is not an integer id", path, it.key());
    put(it.value().get<int64_t>(), it.key());
  }
  std::vector<std::pair<int32_t, bool>> added;  // id, special
  for (const json& a : added_json) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string())
      fail("{}: malformed added_tokens entry {}", path, a.dump());
    put(a["id"].get<int64_t>(), a["content"].get<std::string>());
    added.emplace_back(a["id"].get<int32_t>(), flag(a, "special", false));
  }
  TokenizerSpec s;
  s.tokens.resize(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!slots[i]) fail("{}: token ids are not contiguous (no token has id {})", path, i);
    s.tokens[i] = *slots[i];
  }
  s.types.assign(s.tokens.size(), TokenType::Normal);

  // ---- merges: "a b" strings or ["a", "b"] pairs
  std::vector<std::pair<std::string, std::string>> merges;
  if (model.contains("merges")) {
    if (!model["merges"].is_array()) fail("{}: model.merges is not an array", path);
    for (const json& m : model["merges"]) {
      if (m.is_string()) {
        const std::string t = m.get<std::string>();
        const size_t sp = t.size() > 1 ? t.find(' ', 1) : std::string::npos;
        if (sp == std::string::npos) fail("{}: merge '{}' is not of the form 'left right'", path, t);
        merges.emplace_back(t.substr(0, sp), t.substr(sp + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        fail("{}: malformed merge entry {}", path, m.dump());
      }
    }
  }

  const std::vector<json> pre_steps = steps_of(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json());
  const std::vector<json> norm_steps = steps_of(j.contains("normalizer") ? j["normalizer"] : json());
  bool byte_level = false;
  for (const json& st : pre_steps) byte_level |= type_of(st) == "ByteLevel";
  const bool byte_fallback = flag(model, "byte_fallback", false);

  auto id_of = [&](const std::string& text) -> int32_t {
    for (size_t i = 0; i < s.tokens.size(); ++i)
      if (s.tokens[i] == text) return static_cast<int32_t>(i);
    return -1;
  };

  if (byte_level) {
    s.model = "gpt2";
    s.pre = byte_level_pre(path, pre_steps);
    for (const auto& [a, b] : merges) {
      if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos)
        fail("{}: merge part contains a space: '{}' '{}'", path, a, b);
      s.merges.push_back(a + " " + b);
    }
  } else {
    // SentencePiece-style: spaces become U+2581 (Metaspace or a Replace normalizer).
    bool metaspace = false, prepend = false;
    for (const json& st : pre_steps) {
      if (type_of(st) == "Metaspace") {
        metaspace = true;
        const std::string scheme = st.contains("prepend_scheme") && st["prepend_scheme"].is_string()
                                       ? st["prepend_scheme"].get<std::string>()
                                       : (flag(st, "add_prefix_space", true) ? "always" : "never");
        prepend = prepend || scheme != "never";
      } else if (!st.is_null() && type_of(st) != "Split") {
        fail("{}: unsupported pre_tokenizer '{}' for a SentencePiece-style BPE", path, type_of(st));
      }
    }
    for (const json& st : norm_steps) {
      const std::string t = type_of(st);
      if (t == "Prepend") prepend = true;
      if (t == "Replace") metaspace = true;
    }
    if (!metaspace && !byte_fallback)
      fail("{}: BPE model is neither byte-level (ByteLevel pre_tokenizer) nor SentencePiece-style "
           "(Metaspace / byte_fallback)",
           path);
    s.model = "llama";
    s.add_space_prefix = prepend;
    // Scores from merge ranks: the token made by merge r scores -r; tokens no merge makes score lowest.
    constexpr float kNoMerge = -1e9f;
    s.scores.assign(s.tokens.size(), kNoMerge);
    std::unordered_map<std::string, int32_t> index;
    index.reserve(s.tokens.size());
    for (size_t i = 0; i < s.tokens.size(); ++i) index.emplace(s.tokens[i], static_cast<int32_t>(i));
    for (size_t r = 0; r < merges.size(); ++r) {
      auto it = index.find(merges[r].first + merges[r].second);
      if (it != index.end() && s.scores[it->second] == kNoMerge) s.scores[it->second] = -static_cast<float>(r);
    }
    if (byte_fallback)
      for (size_t i = 0; i < s.tokens.size(); ++i)
        if (is_byte_token(s.tokens[i])) s.types[i] = TokenType::Byte;
  }
  for (const auto& [id, special] : added) s.types[id] = special ? TokenType::Control : TokenType::UserDefined;
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    s.unk = id_of(model["unk_token"].get<std::string>());
    if (s.unk >= 0 && s.model == "llama") s.types[s.unk] = TokenType::Unknown;
  }

  // ---- tokenizer_config.json: special tokens, add_bos/add_eos, chat template
  std::optional<bool> add_bos, add_eos;
  if (!tokenizer_config_json_path_or_empty.empty()) {
    const std::string& cpath = tokenizer_config_json_path_or_empty;
    const json c = read_json(cpath);
    if (!c.is_object()) fail("{}: expected a JSON object", cpath);
    auto special = [&](const char* key, int32_t& id) {
      if (!c.contains(key) || c[key].is_null()) return;
      const auto text = token_text(c[key]);
      if (!text) fail("{}: {} is neither a string nor an object with \"content\"", cpath, key);
      id = id_of(*text);
      if (id < 0) fail("{}: {} '{}' is not in the vocabulary of {}", cpath, key, *text, path);
    };
    special("bos_token", s.bos);
    special("eos_token", s.eos);
    special("unk_token", s.unk);
    special("pad_token", s.pad);
    if (c.contains("add_bos_token") && c["add_bos_token"].is_boolean()) add_bos = c["add_bos_token"].get<bool>();
    if (c.contains("add_eos_token") && c["add_eos_token"].is_boolean()) add_eos = c["add_eos_token"].get<bool>();
    if (c.contains("chat_template")) {
      const json& t = c["chat_template"];
      if (t.is_string()) {
        s.chat_template = t.get<std::string>();
      } else if (t.is_array()) {  // [{"name": ..., "template": ...}]: the "default" one, else the first
        for (const json& e : t) {
          if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
          if (s.chat_template.empty() || (e.contains("name") && e["name"] == "default"))
            s.chat_template = e["template"].get<std::string>();
        }
      }
    }
  }
  s.add_bos = add_bos.value_or(s.model == "llama" && s.bos >= 0);
  s.add_eos = add_eos.value_or(false);
  try {
    return Tokenizer(std::move(s));
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
}

}  // namespace specula
