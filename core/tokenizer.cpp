// Tokenizer: construction from a TokenizerSpec / GGUF metadata, special-token splitting, encode,
// decode and end-of-generation detection, all following llama.cpp (src/llama-vocab.cpp).
#include "core/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "core/gguf.h"
#include "core/tokenizer_internal.h"

namespace specula {

using tok::Attr;

namespace {

constexpr std::string_view kSpaceEscape = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

uint32_t attr_from_type(TokenType t) {
  switch (t) {
    case TokenType::Normal: return tok::kAttrNormal;
    case TokenType::Unknown: return tok::kAttrUnknown;
    case TokenType::Control: return tok::kAttrControl;
    case TokenType::UserDefined: return tok::kAttrUserDefined;
    case TokenType::Unused: return tok::kAttrUnused;
    case TokenType::Byte: return tok::kAttrByte;
    case TokenType::Undefined: return 0;
  }
  return 0;
}

struct PreInfo {
  tok::PreType type;
  bool clean_spaces;
  bool ignore_merges;
};

// llama.cpp's pre-tokenizer names (tokenizer.ggml.pre) for the supported families.
PreInfo pre_info(const std::string& name) {
  using tok::PreType;
  static const std::vector<std::pair<std::vector<std::string_view>, PreInfo>> kTable = {
      {{"", "default"}, {PreType::Default, true, false}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"}, {PreType::Llama3, true, true}},
      {{"gpt2", "gpt-2", "phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat", "mpt", "olmo",
        "exaone4"},
       {PreType::Gpt2, true, false}},
      {{"smollm", "command-r"}, {PreType::Starcoder, false, false}},
      {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b"}, {PreType::Starcoder, true, false}},
      {{"qwen2", "deepseek-r1-qwen", "hunyuan"}, {PreType::Qwen2, false, false}},
      {{"stablelm2", "megrez"}, {PreType::Qwen2, true, false}},
  };
  for (const auto& [names, info] : kTable)
    for (std::string_view n : names)
      if (n == name) return info;
  fail("unsupported pre-tokenizer type '{}' (supported: default, gpt2, smollm, starcoder, llama3, qwen2 and their "
       "aliases)",
       name);
}

// ---- end-of-generation detection (llama.cpp's text heuristics, as in llama-cpp-python 0.3.16)

constexpr std::string_view kEotTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                          "<|end_of_text|>", "<EOT>", "_<EOT>", "<end_of_utterance>"};
constexpr std::string_view kEogTexts[] = {"<|eot_id|>", "<|im_end|>",     "<|end|>", "<|return|>",
                                          "<|call|>",   "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
                                          "<EOT>",      "_<EOT>",        "<|end_of_text|>", "<end_of_utterance>"};
// Fill-in-the-middle pad / repo / file-separator tokens also end generation.
constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"};
constexpr std::string_view kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimSepTexts[] = {"<|file_sep|>"};

template <size_t N>
int32_t first_token_among(const Tokenizer::State& st, const std::string_view (&texts)[N]) {
  int32_t best = -1;
  for (std::string_view t : texts) {
    const int32_t id = st.lookup(t);
    if (id >= 0 && (best < 0 || id < best)) best = id;
  }
  return best;
}

void detect_end_of_generation(Tokenizer::State& st) {
  TokenizerSpec& s = st.spec;
  auto make_control = [&](int32_t id) { st.attrs[id] |= tok::kAttrControl; };
  if (s.eot < 0) {
    s.eot = first_token_among(st, kEotTexts);
    if (s.eot >= 0) make_control(s.eot);
  }
  st.eog.assign(s.tokens.size(), 0);
  for (int32_t id : {first_token_among(st, kFimPadTexts), first_token_among(st, kFimRepTexts),
                     first_token_among(st, kFimSepTexts)}) {
    if (id >= 0) {
      st.eog[id] = 1;
      make_control(id);
    }
  }
  for (std::string_view t : kEogTexts) {
    const int32_t id = st.lookup(t);
    if (id >= 0) {
      st.eog[id] = 1;
      make_control(id);
    }
  }
  for (int32_t id : {s.eos, s.eot, s.eom})
    if (id >= 0) st.eog[id] = 1;
  // gpt-oss style vocabularies: <|end|> does not end generation when <|return|> and <|call|> exist.
  const int32_t ret = st.lookup("<|return|>"), call = st.lookup("<|call|>"), end = st.lookup("<|end|>");
  if (ret >= 0 && call >= 0 && end >= 0 && st.eog[ret] && st.eog[call] && st.eog[end]) {
    st.eog[end] = 0;
    st.attrs[end] = tok::kAttrUserDefined;
  }
}

// ---- pieces (llama_token_to_piece with special=true)

std::string bpe_normal_piece(const std::string& text) {
  std::vector<uint32_t> cps;
  tok::decode_utf8_lenient(text, cps);
  std::string out;
  for (uint32_t cp : cps) {
    const int b = tok::unicode_to_byte(cp);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
      continue;
    }
    std::string utf8;
    tok::append_utf8(cp, utf8);
    out += "[UNK_BYTE_0x";
    for (unsigned char c : utf8) out += fmt::format("{:02x}", c);
    out += text + "]";
  }
  return out;
}

char byte_token_value(const std::string& text) {
  // "<0xNN>": the hex digits at offset 3 (parsed like strtol: stops at the first non-hex digit).
  int v = 0;
  for (size_t i = 3; i < std::min<size_t>(text.size(), 5); ++i) {
    const char c = text[i];
    const int d = (c >= '0' && c <= '9') ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
    if (d < 0) break;
    v = v * 16 + d;
  }
  return static_cast<char>(v);
}

std::string unescape_spaces(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, kSpaceEscape.size(), kSpaceEscape) == 0) {
      out.push_back(' ');
      i += kSpaceEscape.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::string make_piece(const Tokenizer::State& st, int32_t id) {
  const uint32_t attr = st.attrs[id];
  const std::string& text = st.spec.tokens[id];
  if (attr & (tok::kAttrUnknown | tok::kAttrControl | tok::kAttrUserDefined)) return text;
  if (attr & tok::kAttrNormal)
    return st.kind == tok::Kind::SentencePiece ? unescape_spaces(text) : bpe_normal_piece(text);
  if (attr & tok::kAttrByte) return std::string(1, byte_token_value(text));
  return {};  // unused / undefined tokens render as nothing
}

void replace_spaces(std::string_view in, std::string& out) {
  for (char c : in) {
    if (c == ' ')
      out += kSpaceEscape;
    else
      out.push_back(c);
  }
}

// llama_detokenize's clean-up of spaces around punctuation and apostrophes (three in-place passes).
void clean_up_spaces(std::string& t) {
  size_t total = t.size();
  {  // " ?", " !", " .", " ," -> drop the space
    const size_t n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; ++i) {
      const char x = t[i];
      if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
      t[total++] = x;
    }
  }
  {  // " ' " -> "'"
    const size_t n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; ++i) {
      const char x = t[i];
      if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
        --total;
        t[++i] = '\0';
      }
      t[total++] = x;
    }
  }
  {  // " 's", " 'm", " 're", " 've" -> drop the space
    const size_t n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; ++i) {
      const char x = t[i];
      if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
        const char x1 = t[i + 1];
        if (x1 == 's' || x1 == 'm') {
          --total;
        } else if (i + 2 < n) {
          const char x2 = t[i + 2];
          if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
        }
      }
      t[total++] = x;
    }
  }
  t.resize(total);
}

}  // namespace

namespace tok {

// ---- TokenIndex

void TokenIndex::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
}

int32_t TokenIndex::insert(const std::vector<std::string>* texts, int32_t id) {
  texts_ = texts;
  const std::string& text = (*texts)[id];
  const uint64_t h = hash(text);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.id < 0) {
      s = Slot{static_cast<uint32_t>(h >> 32), id};
      return -1;
    }
    if (s.hash == static_cast<uint32_t>(h >> 32) && (*texts)[s.id] == text) return s.id;
  }
}

int32_t TokenIndex::find(std::string_view text) const {
  if (slots_.empty()) return -1;
  const uint64_t h = hash(text);
  const uint32_t tag = static_cast<uint32_t>(h >> 32);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash == tag && (*texts_)[s.id] == text) return s.id;
  }
}

// ---- SpecialMatcher

int32_t SpecialMatcher::child(int32_t node, uint8_t c) const {
  auto it = edges_.find((uint64_t(uint32_t(node)) << 8) | c);
  return it == edges_.end() ? -1 : it->second;
}

void SpecialMatcher::build(const std::vector<std::string>& texts, const std::vector<uint32_t>& attrs) {
  constexpr uint32_t kSpecial = kAttrControl | kAttrUserDefined | kAttrUnknown;
  std::vector<int32_t> ids;
  for (size_t i = 0; i < texts.size(); ++i)
    if (attrs[i] & kSpecial) ids.push_back(static_cast<int32_t>(i));
  // llama.cpp sorts by text length, longest first; equal lengths keep id order here.
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return texts[a].size() > texts[b].size(); });
  priority_.assign(texts.size(), -1);
  lengths_.assign(texts.size(), 0);
  attrs_ = attrs;
  node_token_.assign(1, -1);
  edges_.clear();
  first_byte_.fill(false);
  for (size_t rank = 0; rank < ids.size(); ++rank) {
    const int32_t id = ids[rank];
    const std::string& text = texts[id];
    priority_[id] = static_cast<int32_t>(rank);
    lengths_[id] = static_cast<uint32_t>(text.size());
    first_byte_[static_cast<unsigned char>(text[0])] = true;
    int32_t node = 0;
    for (unsigned char c : text) {
      int32_t next = child(node, c);
      if (next < 0) {
        next = static_cast<int32_t>(node_token_.size());
        node_token_.push_back(-1);
        edges_.emplace((uint64_t(uint32_t(node)) << 8) | c, next);
      }
      node = next;
    }
    node_token_[node] = id;
  }
}

std::vector<Fragment> SpecialMatcher::partition(std::string_view text, bool parse_special) const {
  struct Occurrence {
    int32_t priority;
    uint32_t pos;
    int32_t token;
  };
  std::vector<Occurrence> occ;
  const size_t n = text.size();
  for (size_t pos = 0; pos < n; ++pos) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) continue;
    int32_t node = 0;
    for (size_t j = pos; j < n; ++j) {
      node = child(node, static_cast<unsigned char>(text[j]));
      if (node < 0) break;
      const int32_t id = node_token_[node];
      if (id < 0) continue;
      if (!parse_special && (attrs_[id] & (kAttrControl | kAttrUnknown))) continue;
      occ.push_back(Occurrence{priority_[id], static_cast<uint32_t>(pos), id});
    }
  }
  std::vector<Fragment> out;
  if (occ.empty()) {
    if (n > 0) out.push_back(Fragment{-1, 0, n});
    return out;
  }
  std::sort(occ.begin(), occ.end(), [](const Occurrence& a, const Occurrence& b) {
    return a.priority < b.priority || (a.priority == b.priority && a.pos < b.pos);
  });
  // A candidate is taken when it lies inside text no earlier (longer or equal) token claimed and does
  // not overlap the previous occurrence of the same token. Because earlier tokens are at least as
  // long, checking its two ends against claimed bytes is enough.
  std::vector<uint8_t> claimed(n, 0);
  std::vector<Occurrence> taken;
  int32_t current = -1;
  size_t current_end = 0;
  for (const Occurrence& o : occ) {
    if (o.token != current) {
      current = o.token;
      current_end = 0;
    }
    const size_t len = lengths_[o.token];
    if (o.pos < current_end || claimed[o.pos] || claimed[o.pos + len - 1]) continue;
    std::fill(claimed.begin() + o.pos, claimed.begin() + o.pos + len, 1);
    current_end = o.pos + len;
    taken.push_back(o);
  }
  std::sort(taken.begin(), taken.end(), [](const Occurrence& a, const Occurrence& b) { return a.pos < b.pos; });
  size_t at = 0;
  for (const Occurrence& o : taken) {
    if (o.pos > at) out.push_back(Fragment{-1, at, o.pos - at});
    out.push_back(Fragment{o.token, o.pos, lengths_[o.token]});
    at = o.pos + lengths_[o.token];
  }
  if (at < n) out.push_back(Fragment{-1, at, n - at});
  return out;
}

}  // namespace tok

// ---- Tokenizer

Tokenizer::Tokenizer(TokenizerSpec spec) {
  auto st = std::make_shared<State>();
  st->spec = std::move(spec);
  TokenizerSpec& s = st->spec;
  const size_t n = s.tokens.size();
  if (n == 0) fail("tokenizer has an empty vocabulary");
  if (n > static_cast<size_t>(INT32_MAX / 2)) fail("tokenizer vocabulary of {} tokens is too large", n);
  if (!s.scores.empty() && s.scores.size() != n)
    fail("tokenizer has {} tokens but {} scores", n, s.scores.size());
  if (!s.types.empty() && s.types.size() != n) fail("tokenizer has {} tokens but {} token types", n, s.types.size());
  if (s.model == "gpt2") {
    st->kind = tok::Kind::ByteLevelBpe;
    const PreInfo info = pre_info(s.pre);
    st->pre = info.type;
    st->clean_spaces = info.clean_spaces;
    st->ignore_merges = info.ignore_merges;
    if (s.merges.empty()) fail("byte-level BPE tokenizer (model 'gpt2') has no merges");
  } else if (s.model == "llama") {
    st->kind = tok::Kind::SentencePiece;
    st->clean_spaces = false;
  } else {
    fail("unsupported tokenizer model '{}' (supported: 'gpt2' byte-level BPE, 'llama' SentencePiece)", s.model);
  }
  for (auto [name, id] : {std::pair{"bos", s.bos}, {"eos", s.eos}, {"unk", s.unk}, {"pad", s.pad}, {"eot", s.eot},
                          {"eom", s.eom}}) {
    if (id < -1 || id >= static_cast<int64_t>(n))
      fail("tokenizer {} token id {} is outside the vocabulary of {} tokens", name, id, n);
  }
  if (s.add_bos && s.bos < 0) fail("tokenizer adds a BOS token but has no bos token id");
  if (s.add_eos && s.eos < 0) fail("tokenizer adds an EOS token but has no eos token id");

  st->attrs.resize(n);
  st->token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (s.tokens[i].empty()) s.tokens[i] = fmt::format("[EMPTY_{}]", i);
  for (size_t i = 0; i < n; ++i) {
    const int32_t dup = st->token_to_id.insert(&s.tokens, static_cast<int32_t>(i));
    if (dup >= 0) fail("duplicate token in vocabulary: '{}' has ids {} and {}", s.tokens[i], dup, i);
    st->attrs[i] = s.types.empty() ? tok::kAttrNormal : attr_from_type(s.types[i]);
  }
  detect_end_of_generation(*st);
  st->specials.build(s.tokens, st->attrs);
  if (st->kind == tok::Kind::ByteLevelBpe) {
    tok::build_bpe_tables(*st);
  } else {
    for (int b = 0; b < 256; ++b) {
      int32_t id = st->lookup(fmt::format("<0x{:02X}>", b));
      if (id < 0) id = st->lookup(std::string(1, static_cast<char>(b)));
      st->spm_byte_token[b] = id;
    }
  }
  st->pieces.resize(n);
  for (size_t i = 0; i < n; ++i) st->pieces[i] = make_piece(*st, static_cast<int32_t>(i));
  state_ = std::move(st);
}

Tokenizer Tokenizer::from_gguf(const GgufFile& g) {
  const std::string& path = g.path();
  auto need = [&](std::string_view key) {
    if (!g.has(key)) fail("{}: missing tokenizer metadata key '{}'", path, key);
  };
  need("tokenizer.ggml.model");
  TokenizerSpec s;
  s.model = g.get_string("tokenizer.ggml.model");
  s.pre = g.find_string("tokenizer.ggml.pre").value_or("default");
  need("tokenizer.ggml.tokens");
  for (std::string_view t : g.get_string_views("tokenizer.ggml.tokens")) s.tokens.emplace_back(t);
  const size_t n = s.tokens.size();
  if (g.has("tokenizer.ggml.scores")) {
    s.scores = g.get_f32_array("tokenizer.ggml.scores");
    if (s.scores.size() < n)
      fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", path, s.scores.size(), n);
    s.scores.resize(n);
  }
  if (auto types = g.find_i32_array("tokenizer.ggml.token_type")) {
    if (types->size() < n)
      fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", path, types->size(), n);
    s.types.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const int32_t t = (*types)[i];
      s.types[i] = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::Undefined;
    }
  }
  // Defaults as llama.cpp sets them per model kind; metadata keys override.
  if (s.model == "llama") {
    s.bos = 1;
    s.eos = 2;
    s.unk = 0;
    s.add_bos = true;
    s.add_space_prefix = true;
  } else if (s.model == "gpt2") {
    need("tokenizer.ggml.merges");
    s.merges = g.get_string_array("tokenizer.ggml.merges");
    s.bos = 11;
    s.eos = 11;
    const std::string& p = s.pre;
    s.add_bos = p == "llama3" || p == "llama-v3" || p == "llama-bpe" || p == "falcon3" || p == "pixtral";
  } else {
    fail("{}: unsupported tokenizer.ggml.model '{}' (supported: 'gpt2', 'llama')", path, s.model);
  }
  for (int32_t* id : {&s.bos, &s.eos, &s.unk})
    if (*id >= static_cast<int64_t>(n)) *id = -1;  // default outside the vocabulary: disabled
  auto read_id = [&](std::string_view key, int32_t& id) {
    if (auto v = g.find_u32(key); v && *v < n) id = static_cast<int32_t>(*v);
  };
  read_id("tokenizer.ggml.bos_token_id", s.bos);
  read_id("tokenizer.ggml.eos_token_id", s.eos);
  read_id("tokenizer.ggml.unknown_token_id", s.unk);
  read_id("tokenizer.ggml.padding_token_id", s.pad);
  read_id("tokenizer.ggml.eot_token_id", s.eot);
  read_id("tokenizer.ggml.eom_token_id", s.eom);
  s.add_bos = g.find_bool("tokenizer.ggml.add_bos_token").value_or(s.add_bos);
  s.add_eos = g.find_bool("tokenizer.ggml.add_eos_token").value_or(s.add_eos);
  s.add_space_prefix = g.find_bool("tokenizer.ggml.add_space_prefix").value_or(s.add_space_prefix);
  s.chat_template = g.find_string("tokenizer.chat_template").value_or("");
  try {
    return Tokenizer(std::move(s));
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const State& st = *state_;
  const TokenizerSpec& s = st.spec;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && s.add_bos) out.push_back(s.bos);
  const std::vector<tok::Fragment> fragments = st.specials.partition(text, parse_special);
  bool prev_special = true;  // SentencePiece: a space is prefixed to text that follows a special token
  std::string escaped;
  for (const tok::Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    const std::string_view raw = text.substr(f.begin, f.size);
    if (st.kind == tok::Kind::ByteLevelBpe) {
      tok::bpe_encode(st, raw, out);
    } else {
      escaped.clear();
      if (s.add_space_prefix && prev_special) escaped += kSpaceEscape;
      replace_spaces(raw, escaped);
      tok::spm_encode(st, escaped, out);
      prev_special = false;
    }
  }
  if (add_special && s.add_eos) out.push_back(s.eos);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, DecodeOptions options) const {
  const State& st = *state_;
  const TokenizerSpec& s = st.spec;
  bool remove_space = s.add_space_prefix;
  if (options.remove_special && s.add_bos && !ids.empty() && ids.front() == s.bos) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (options.remove_special && s.add_eos && !ids.empty() && ids.back() == s.eos) ids = ids.first(ids.size() - 1);
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= st.n_vocab()) fail("cannot decode token id {}: the vocabulary has {} tokens", id, st.n_vocab());
    const bool hidden = !options.unparse_special && (st.attrs[id] & (tok::kAttrUnknown | tok::kAttrControl));
    if (!hidden) {
      std::string_view piece = st.pieces[id];
      if (remove_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
      out += piece;
    }
    remove_space = false;
  }
  if (st.clean_spaces) clean_up_spaces(out);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  const State& st = *state_;
  if (id < 0 || id >= st.n_vocab()) fail("token id {} is outside the vocabulary of {} tokens", id, st.n_vocab());
  return st.pieces[id];
}

int32_t Tokenizer::n_vocab() const { return state_->n_vocab(); }
int32_t Tokenizer::bos() const { return state_->spec.bos; }
int32_t Tokenizer::eos() const { return state_->spec.eos; }
int32_t Tokenizer::eot() const { return state_->spec.eot; }

bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && id < state_->n_vocab() && state_->eog[id] != 0;
}

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < state_->n_vocab() && (state_->attrs[id] & (tok::kAttrControl | tok::kAttrUnknown));
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = state_->lookup(text);
  if (id < 0) return std::nullopt;
  return id;
}

const TokenizerSpec& Tokenizer::spec() const { return state_->spec; }

}  // namespace specula
