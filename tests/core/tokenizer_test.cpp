// Tokenizer tests: exact agreement with llama.cpp on the bundled GGUF models (golden fixtures from
// scripts/golden/gen_tokenizer_fixtures.py), tokenizer.json loading, and error reporting.
#include "core/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gguf.h"
#include "core/tokenizer_internal.h"
#include "tests/test_util.h"

namespace specula {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path repo_root() {
  if (const char* env = std::getenv("SPECULA_ROOT"); env && *env) return env;
  return SPECULA_SOURCE_DIR;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string base64_decode(const std::string& in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    const int v = val(c);
    if (v < 0) continue;  // '=' padding
    buf = (buf << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xFF));
    }
  }
  return out;
}

struct Fnv1a64 {
  uint64_t v = 0xCBF29CE484222325ull;
  void update(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) v = (v ^ p[i]) * 0x100000001B3ull;
  }
  void update_u32(uint32_t x) {
    const unsigned char b[4] = {uint8_t(x), uint8_t(x >> 8), uint8_t(x >> 16), uint8_t(x >> 24)};
    update(b, 4);
  }
  std::string hex() const { return fmt::format("{:016x}", v); }
};

std::string printable(const std::string& s, size_t max = 80) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c >= 0x20 && c < 0x7F && c != '\\')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("\\x{:02x}", c);
  }
  return s.size() > max ? out + "..." : out;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < 40; ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return ids.size() > 40 ? s + ",..." : s;
}

// ------------------------------------------------------------------------------------------------
// Golden fixtures against the real GGUF files

struct CaseCounts {
  int cases = 0, ids_ok = 0, decode_ok = 0;
};

// Checks encode(text) == ids and decode(ids) == llama_detokenize output for every fixture case.
CaseCounts check_cases(const Tokenizer& tok, const json& cases, const std::string& label,
                       std::set<std::string>* strings) {
  CaseCounts n;
  for (const json& c : cases) {
    const std::string text =
        c.contains("text") ? c["text"].get<std::string>() : base64_decode(c["text_b64"].get<std::string>());
    if (strings) strings->insert(text);
    const bool add_bos = c["add_bos"].get<bool>();
    const bool special = c["special"].get<bool>();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok.encode(text, add_bos, special);
    ++n.cases;
    if (got == want) {
      ++n.ids_ok;
    } else {
      ADD_FAILURE() << label << ": encode('" << printable(text) << "', add_bos=" << add_bos
                    << ", special=" << special << ")\n  want " << ids_str(want) << "\n  got  " << ids_str(got);
    }
    const std::string want_dec = base64_decode(c["decode_b64"].get<std::string>());
    const std::string want_plain =
        c.contains("decode_plain_b64") ? base64_decode(c["decode_plain_b64"].get<std::string>()) : want_dec;
    const std::string dec = tok.decode(want);
    const std::string plain = tok.decode(want, DecodeOptions{.remove_special = true, .unparse_special = false});
    if (dec == want_dec && plain == want_plain) {
      ++n.decode_ok;
    } else {
      ADD_FAILURE() << label << ": decode(" << ids_str(want) << ")\n  want '" << printable(want_dec) << "' / '"
                    << printable(want_plain) << "'\n  got  '" << printable(dec) << "' / '" << printable(plain)
                    << "'";
    }
  }
  return n;
}

void check_golden(const std::string& name, const std::string& model_file) {
  const fs::path root = repo_root();
  const fs::path model_path = root / "models" / model_file;
  const fs::path fixture_path = root / "tests" / "golden" / ("tokenizer_" + name + ".json");
  if (!fs::exists(model_path)) GTEST_SKIP() << "model file " << model_path << " is absent (run scripts/setup.sh)";
  ASSERT_TRUE(fs::exists(fixture_path)) << fixture_path;
  const json fx = json::parse(read_file(fixture_path));
  const auto gguf = GgufFile::open(model_path.string());
  const Tokenizer tok = Tokenizer::from_gguf(*gguf);

  EXPECT_EQ(tok.n_vocab(), fx["n_vocab"].get<int32_t>());
  EXPECT_EQ(tok.bos(), fx["bos"].get<int32_t>());
  EXPECT_EQ(tok.eos(), fx["eos"].get<int32_t>());
  EXPECT_EQ(tok.eot(), fx["eot"].get<int32_t>());
  EXPECT_EQ(tok.spec().add_bos, fx["add_bos"].get<bool>());
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.is_eog(id)) eog.push_back(id);
  EXPECT_EQ(eog, fx["eog"].get<std::vector<int32_t>>());

  // Pieces: digest over the whole vocabulary plus explicit samples.
  Fnv1a64 digest;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    const std::string p = tok.token_to_piece(id);
    digest.update_u32(static_cast<uint32_t>(p.size()));
    digest.update(p.data(), p.size());
  }
  EXPECT_EQ(digest.hex(), fx["pieces_fnv1a64"].get<std::string>());
  int piece_mismatch = 0;
  for (auto it = fx["pieces_b64"].begin(); it != fx["pieces_b64"].end(); ++it) {
    const int32_t id = std::stoi(it.key());
    if (tok.token_to_piece(id) != base64_decode(it.value().get<std::string>()) && ++piece_mismatch <= 5)
      ADD_FAILURE() << name << ": piece of token " << id << " is '" << printable(tok.token_to_piece(id)) << "'";
  }
  for (auto it = fx["pieces_plain_b64"].begin(); it != fx["pieces_plain_b64"].end(); ++it) {
    const int32_t id = std::stoi(it.key());
    const std::vector<int32_t> one{id};
    const std::string plain = tok.decode(one, DecodeOptions{.remove_special = false, .unparse_special = false});
    EXPECT_EQ(plain, base64_decode(it.value().get<std::string>())) << name << ": plain piece of token " << id;
  }

  // Encode / decode of every fixture string.
  std::set<std::string> strings;
  const CaseCounts counts = check_cases(tok, fx["cases"], name, &strings);
  std::printf("[tokenizer golden %s] %zu strings, %d cases: %d encodes and %d decodes match llama.cpp %s\n",
              name.c_str(), strings.size(), counts.cases, counts.ids_ok, counts.decode_ok,
              fx["llama_cpp_python_version"].get<std::string>().c_str());
  EXPECT_GE(strings.size(), 320u);

  // The same vocabulary with other metadata (pre-tokenizer, space prefix), checked against llama.cpp
  // running on a GGUF copy with those keys changed.
  for (const json& v : fx["variants"]) {
    TokenizerSpec spec = tok.spec();
    std::string label = name;
    for (auto it = v["overrides"].begin(); it != v["overrides"].end(); ++it) {
      if (it.key() == "tokenizer.ggml.pre") {
        spec.pre = it.value().get<std::string>();
      } else if (it.key() == "tokenizer.ggml.add_space_prefix") {
        spec.add_space_prefix = it.value().get<bool>();
      } else {
        FAIL() << "unknown override " << it.key();
      }
      label += fmt::format(" [{}={}]", it.key(), it.value().dump());
    }
    const Tokenizer variant(std::move(spec));
    const CaseCounts vc = check_cases(variant, v["cases"], label, nullptr);
    std::printf("[tokenizer golden %s] %d cases: %d encodes and %d decodes match\n", label.c_str(), vc.cases,
                vc.ids_ok, vc.decode_ok);
  }

  // Chat templates.
  for (const json& c : fx["chat"]) {
    std::vector<ChatMessage> msgs;
    for (const json& m : c["messages"]) msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    EXPECT_EQ(tok.apply_chat_template(msgs, c["add_generation_prompt"].get<bool>()), c["expected"].get<std::string>())
        << name << ": chat template (" << c["source"].get<std::string>() << ")";
  }

  // Round trip on random valid UTF-8 (deterministic): without special-token parsing both tokenizers
  // are lossless (except that SentencePiece decodes a literal U+2581 as a space, so it is not used).
  {
    const std::vector<std::string> pool = {"a", "Z", "7", " ", "  ", "\n", "\t", "\r\n", "'s", "!", "<", "|>",
                                           "é", "ß", "日", "本", "한", "Ж", "ا", "🙂", "👍🏽", "\u200d", "\xc2\xa0"};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    auto next = [&] {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      return rng;
    };
    int round_trip_failures = 0;
    for (int i = 0; i < 300; ++i) {
      std::string text;
      const int len = static_cast<int>(next() % 40);
      for (int k = 0; k < len; ++k) text += pool[next() % pool.size()];
      const std::string back = tok.decode(tok.encode(text, false, false));
      if (back != text && ++round_trip_failures <= 5)
        ADD_FAILURE() << name << ": round trip of '" << printable(text) << "' gave '" << printable(back) << "'";
    }
    EXPECT_EQ(round_trip_failures, 0);
  }

  // The whole WikiText-2 test file: token count and digest, plus timing.
  if (fx.contains("wikitext") && !fx["wikitext"].is_null()) {
    const fs::path wiki = "/work/shared/data/wikitext2_wiki.test.raw";
    if (fs::exists(wiki)) {
      const std::string text = read_file(wiki);
      ASSERT_EQ(text.size(), fx["wikitext"]["bytes"].get<size_t>());
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<int32_t> ids = tok.encode(text, false, false);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      Fnv1a64 d;
      for (int32_t id : ids) d.update_u32(static_cast<uint32_t>(id));
      EXPECT_EQ(ids.size(), fx["wikitext"]["n_tokens"].get<size_t>());
      EXPECT_EQ(d.hex(), fx["wikitext"]["ids_fnv1a64"].get<std::string>());
      std::printf("[tokenizer golden %s] WikiText-2 test (%.2f MB) -> %zu tokens in %.3f s (%.1f MB/s)\n",
                  name.c_str(), text.size() / 1e6, ids.size(), secs, text.size() / 1e6 / secs);
      EXPECT_LT(secs, 30.0);  // generous: shared CI machines; ~0.5 s expected in Release
    }
  }
}

TEST(TokenizerGolden, SmolLM2) { check_golden("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf"); }
TEST(TokenizerGolden, Gemma3) { check_golden("gemma3-270m", "gemma-3-270m-q4_k_m.gguf"); }

// ------------------------------------------------------------------------------------------------
// Pre-tokenizer scanners

TEST(TokenizerPretokenize, SmolLMSplitsDigitsAndWords) {
  using tok::PreType;
  EXPECT_EQ(tok::pretokenize(PreType::Starcoder, "Hello world's 123  x\n\ny"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", "1", "2", "3", " ", " x", "\n", "\n", "y"}));
  EXPECT_EQ(tok::pretokenize(PreType::Gpt2, "I'm  here!!  "),
            (std::vector<std::string>{"I", "'m", " ", " here", "!!", "  "}));
  EXPECT_EQ(tok::pretokenize(PreType::Llama3, "I'M 12345 ok\r\n\nx"),
            (std::vector<std::string>{"I", "'M", " ", "123", "45", " ok", "\r\n\n", "x"}));
  EXPECT_EQ(tok::pretokenize(PreType::Default, "a+b=1234"),
            (std::vector<std::string>{"a", "+", "b", "=", "123", "4"}));
  // Invalid UTF-8 becomes U+FFFD, one per bad byte.
  EXPECT_EQ(tok::pretokenize(PreType::Gpt2, "a\xff\xfe"), (std::vector<std::string>{"a", "\xEF\xBF\xBD\xEF\xBF\xBD"}));
}

// ------------------------------------------------------------------------------------------------
// tokenizer.json loading

class TempDir {
 public:
  TempDir() {
    dir_ = fs::temp_directory_path() / fmt::format("specula_tok_test_{}_{}", ::getpid(), counter_++);
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  fs::path dir_;
  static inline int counter_ = 0;
};

json byte_level_tokenizer_json(bool pair_merges) {
  json vocab = {{"<|endoftext|>", 0}, {"h", 1},   {"e", 2},      {"l", 3},   {"o", 4},   {"Ġ", 5},
                {"w", 6},             {"r", 7},   {"d", 8},      {"he", 9},  {"ll", 10}, {"hell", 11},
                {"hello", 12},        {"Ġw", 13}, {"or", 14},    {"Ġwor", 15}, {"ld", 16}, {"Ġworld", 17},
                {"!", 18},            {"1", 19},  {"2", 20}};
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"l", "d"},
      {"Ġwor", "ld"}};
  json m = json::array();
  for (const auto& [a, b] : merges) {
    if (pair_merges)
      m.push_back(json::array({a, b}));
    else
      m.push_back(a + " " + b);
  }
  return json{
      {"version", "1.0"},
      {"added_tokens",
       json::array({{{"id", 0}, {"content", "<|endoftext|>"}, {"special", true}, {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}},
                                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}})}}},
      {"model", {{"type", "BPE"}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", m}}},
  };
}

TEST(TokenizerHfJson, ByteLevelBpe) {
  TempDir dir;
  for (bool pairs : {false, true}) {
    const std::string tj = dir.write("tokenizer.json", byte_level_tokenizer_json(pairs).dump());
    const std::string tc = dir.write(
        "tokenizer_config.json",
        json{{"eos_token", "<|endoftext|>"}, {"chat_template", "{{'<|im_start|>' + message['role']}}"}}.dump());
    const Tokenizer tok = Tokenizer::from_hf_json(tj, tc);
    EXPECT_EQ(tok.spec().model, "gpt2");
    EXPECT_EQ(tok.spec().pre, "smollm");
    EXPECT_EQ(tok.n_vocab(), 21);
    EXPECT_EQ(tok.eos(), 0);
    EXPECT_TRUE(tok.is_eog(0));
    EXPECT_FALSE(tok.spec().add_bos);
    EXPECT_EQ(tok.encode("hello world", true, false), (std::vector<int32_t>{12, 17}));
    EXPECT_EQ(tok.encode("hold", false, false), (std::vector<int32_t>{1, 4, 16}));
    EXPECT_EQ(tok.encode("hello12!", false, false), (std::vector<int32_t>{12, 19, 20, 18}));
    EXPECT_EQ(tok.encode("hello<|endoftext|>", false, true), (std::vector<int32_t>{12, 0}));
    EXPECT_EQ(tok.token_to_piece(17), " world");
    const std::vector<int32_t> ids{12, 17, 0};
    EXPECT_EQ(tok.decode(ids), "hello world<|endoftext|>");
    EXPECT_EQ(tok.decode(ids, DecodeOptions{.remove_special = false, .unparse_special = false}), "hello world");
  }
}

TEST(TokenizerHfJson, SentencePieceStyleWithByteFallback) {
  TempDir dir;
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = 3 + b;
  const std::vector<std::string> pieces = {"▁", "h", "e", "l", "o", "▁h", "ll", "▁he", "▁hell", "▁hello", "w", "▁w"};
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = 259 + static_cast<int>(i);
  const json tj = {
      {"added_tokens", json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                    {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                    {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "▁"}},
                                     {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}})}}},
      {"pre_tokenizer", nullptr},
      {"model",
       {{"type", "BPE"},
        {"byte_fallback", true},
        {"unk_token", "<unk>"},
        {"vocab", vocab},
        {"merges", json::array({"▁ h", "l l", "▁h e", "▁he ll", "▁hell o", "▁ w"})}}},
  };
  const std::string tj_path = dir.write("tokenizer.json", tj.dump());
  const std::string tc_path = dir.write(
      "tokenizer_config.json",
      json{{"bos_token", {{"content", "<s>"}, {"lstrip", false}}}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}}.dump());
  const Tokenizer tok = Tokenizer::from_hf_json(tj_path, tc_path);
  EXPECT_EQ(tok.spec().model, "llama");
  EXPECT_TRUE(tok.spec().add_space_prefix);
  EXPECT_TRUE(tok.spec().add_bos);
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  const int32_t hello = 259 + 9, space = 259, w = 259 + 11;
  EXPECT_EQ(tok.encode("hello", true, false), (std::vector<int32_t>{1, hello}));
  // "é" is not in the vocabulary: byte fallback to <0xC3><0xA9>.
  EXPECT_EQ(tok.encode("hello é w", false, false), (std::vector<int32_t>{hello, space, 3 + 0xC3, 3 + 0xA9, w}));
  const std::vector<int32_t> ids = tok.encode("hello é w", true, false);
  // As llama_detokenize: removing the BOS keeps the space prefix of the first word.
  EXPECT_EQ(tok.decode(ids, DecodeOptions{.remove_special = true, .unparse_special = false}), " hello é w");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{hello, space, 3 + 0xC3, 3 + 0xA9}), "hello é");
  EXPECT_EQ(tok.token_to_piece(3 + 0x41), "A");
  EXPECT_EQ(tok.token_to_piece(1), "<s>");
}

TEST(TokenizerHfJson, MalformedFilesNameTheFile) {
  TempDir dir;
  const std::string bad = dir.write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
  try {
    (void)Tokenizer::from_hf_json(bad, "");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos) << e.what();
  }
  const std::string no_model = dir.write("t2.json", "{\"version\": \"1.0\"}");
  try {
    (void)Tokenizer::from_hf_json(no_model, "");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(no_model), std::string::npos) << e.what();
  }
  const std::string unigram = dir.write("t3.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
  EXPECT_THROW((void)Tokenizer::from_hf_json(unigram, ""), Error);
  EXPECT_THROW((void)Tokenizer::from_hf_json(dir.write("t4.json", "{}"), ""), Error);
  const std::string missing = (fs::temp_directory_path() / "specula_no_such_dir" / "tokenizer.json").string();
  try {
    (void)Tokenizer::from_hf_json(missing, "");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  // Found by hf_json_fuzz: a huge id in a small file used to size the vocabulary (an 8 GB allocation).
  const std::string huge = dir.write("t5.json",
                                     "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"ab\": 888888882, \"b\": 2}, "
                                     "\"merges\": [\"a b\"]}, \"added_tokens\": [{\"id\": 3, \"content\": \"<s>\"}]}");
  test::expect_error([&] { (void)Tokenizer::from_hf_json(huge, ""); },
                     {huge.c_str(), "token id 888888882 of 'ab' is out of range: the file lists 4 tokens, so ids must be in [0, 4)"});
  const std::string neg = dir.write("t6.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}}}");
  test::expect_error([&] { (void)Tokenizer::from_hf_json(neg, ""); }, {"token id -1 of 'a' is out of range"});
}

// ------------------------------------------------------------------------------------------------
// GGUF metadata errors (tiny GGUF images built in memory)

class GgufBuilder {
 public:
  GgufBuilder& str(const std::string& key, const std::string& v) {
    this->key(key);
    u32(8);
    string(v);
    ++n_kv_;
    return *this;
  }
  GgufBuilder& str_array(const std::string& key, const std::vector<std::string>& v) {
    this->key(key);
    u32(9);
    u32(8);
    u64(v.size());
    for (const auto& s : v) string(s);
    ++n_kv_;
    return *this;
  }
  std::string image() const {
    std::string out;
    auto put = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
    const uint32_t magic = 0x46554747, version = 3;
    const uint64_t n_tensors = 0;
    put(&magic, 4);
    put(&version, 4);
    put(&n_tensors, 8);
    put(&n_kv_, 8);
    out += body_;
    while (out.size() % 32) out.push_back('\0');
    return out;
  }

 private:
  void u32(uint32_t v) { body_.append(reinterpret_cast<const char*>(&v), 4); }
  void u64(uint64_t v) { body_.append(reinterpret_cast<const char*>(&v), 8); }
  void string(const std::string& s) {
    u64(s.size());
    body_ += s;
  }
  void key(const std::string& k) { string(k); }
  std::string body_;
  uint64_t n_kv_ = 0;
};

std::string gguf_error(const std::string& image) {
  const auto g = GgufFile::from_memory(image.data(), image.size(), "mem.gguf");
  try {
    (void)Tokenizer::from_gguf(*g);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerGguf, MissingMetadataNamesTheKey) {
  const std::string no_model = GgufBuilder().str("general.architecture", "llama").image();
  std::string msg = gguf_error(no_model);
  EXPECT_NE(msg.find("tokenizer.ggml.model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mem.gguf"), std::string::npos) << msg;

  const std::string no_tokens = GgufBuilder().str("tokenizer.ggml.model", "gpt2").image();
  msg = gguf_error(no_tokens);
  EXPECT_NE(msg.find("tokenizer.ggml.tokens"), std::string::npos) << msg;

  const std::string no_merges =
      GgufBuilder().str("tokenizer.ggml.model", "gpt2").str_array("tokenizer.ggml.tokens", {"a", "b"}).image();
  msg = gguf_error(no_merges);
  EXPECT_NE(msg.find("tokenizer.ggml.merges"), std::string::npos) << msg;

  const std::string bad_model =
      GgufBuilder().str("tokenizer.ggml.model", "t5").str_array("tokenizer.ggml.tokens", {"a"}).image();
  msg = gguf_error(bad_model);
  EXPECT_NE(msg.find("t5"), std::string::npos) << msg;

  const std::string bad_pre = GgufBuilder()
                                  .str("tokenizer.ggml.model", "gpt2")
                                  .str("tokenizer.ggml.pre", "klingon")
                                  .str_array("tokenizer.ggml.tokens", {"a", "b", "ab"})
                                  .str_array("tokenizer.ggml.merges", {"a b"})
                                  .image();
  msg = gguf_error(bad_pre);
  EXPECT_NE(msg.find("klingon"), std::string::npos) << msg;

  const std::string ok = GgufBuilder()
                             .str("tokenizer.ggml.model", "gpt2")
                             .str("tokenizer.ggml.pre", "gpt2")
                             .str_array("tokenizer.ggml.tokens", {"a", "b", "ab"})
                             .str_array("tokenizer.ggml.merges", {"a b"})
                             .image();
  EXPECT_EQ(gguf_error(ok), "");
  const auto g = GgufFile::from_memory(ok.data(), ok.size(), "ok.gguf");
  const Tokenizer tok = Tokenizer::from_gguf(*g);
  EXPECT_EQ(tok.encode("abba", false, false), (std::vector<int32_t>{2, 1, 0}));
  EXPECT_THROW((void)tok.token_to_piece(3), Error);
  EXPECT_THROW((void)tok.decode(std::vector<int32_t>{5}), Error);
}

// ------------------------------------------------------------------------------------------------
// Chat templates

Tokenizer tiny_tokenizer(const std::string& chat_template, std::vector<std::string> extra_tokens = {}) {
  TokenizerSpec s;
  s.model = "llama";
  s.tokens = {"<unk>", "<s>", "</s>", "a"};
  for (auto& t : extra_tokens) s.tokens.push_back(t);
  s.scores.assign(s.tokens.size(), 0.0f);
  s.bos = 1;
  s.eos = 2;
  s.unk = 0;
  s.chat_template = chat_template;
  return Tokenizer(std::move(s));
}

TEST(TokenizerChat, Families) {
  const std::vector<ChatMessage> msgs = {{"system", " Be brief. "}, {"user", "Hi "}, {"assistant", "Hello"}};
  EXPECT_EQ(tiny_tokenizer("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}").apply_chat_template(msgs, true),
            "<|im_start|>system\n Be brief. <|im_end|>\n<|im_start|>user\nHi <|im_end|>\n<|im_start|>assistant\n"
            "Hello<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(tiny_tokenizer("", {"<start_of_turn>", "<end_of_turn>"}).apply_chat_template(msgs, true),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_EQ(tiny_tokenizer("<|start_header_id|>{{ role }}<|end_header_id|>").apply_chat_template({{"user", " x "}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
}

TEST(TokenizerChat, UnrecognisedTemplateIsAnError) {
  try {
    (void)tiny_tokenizer("{{ messages | some_custom_filter }}").apply_chat_template({{"user", "x"}}, true);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unrecognised chat template"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)tiny_tokenizer("").apply_chat_template({{"user", "x"}}, true), Error);
  EXPECT_THROW((void)tiny_tokenizer("[INST] {{ x }} [/INST]").apply_chat_template({{"user", "x"}}, true), Error);
}

TEST(TokenizerSpec, Validation) {
  TokenizerSpec s;
  s.model = "llama";
  s.tokens = {"a", "b"};
  s.scores = {0.0f};
  EXPECT_THROW(Tokenizer{s}, Error);
  s.scores = {0.0f, 0.0f};
  s.bos = 7;
  EXPECT_THROW(Tokenizer{s}, Error);
  s.bos = -1;
  s.add_bos = true;
  EXPECT_THROW(Tokenizer{s}, Error);
  s.add_bos = false;
  s.tokens = {"a", "a"};
  EXPECT_THROW(Tokenizer{s}, Error);
}

}  // namespace
}  // namespace specula
