#pragma once
// Internals shared by core/tokenizer*.cpp. Not part of the public API.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tokenizer.h"

namespace specula::tok {

// llama.cpp token attributes (bit flags; several may be set, e.g. a text-detected end-of-turn token
// that the file typed user-defined also gets Control).
enum Attr : uint32_t {
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
};

enum class Kind { ByteLevelBpe, SentencePiece };

// Pre-tokenizer families (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*), each a fixed sequence of split passes.
enum class PreType {
  Default,    // [\p{P}$+<=>^~|]+ , gpt2 , \p{N}+ , [0-9]{3}
  Gpt2,       // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
  Starcoder,  // \p{N} then gpt2 (smollm, starcoder, refact, command-r, ...)
  Llama3,     // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  Qwen2,      // as Llama3 with \p{N} (single digits)
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Text -> token id over a fixed vocabulary: open addressing with linear probing, storing each entry's
// hash so that misses (the common case while merging) rarely touch the token strings.
class TokenIndex {
 public:
  // `texts` must outlive the index. Returns the id of an earlier duplicate of texts[i], or -1.
  int32_t insert(const std::vector<std::string>* texts, int32_t id);
  void reserve(size_t n);
  int32_t find(std::string_view text) const;

 private:
  static uint64_t hash(std::string_view s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h ^ (h >> 29);
  }
  struct Slot {
    uint32_t hash = 0;
    int32_t id = -1;
  };
  const std::vector<std::string>* texts_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// ---- Unicode helpers (tokenizer_unicode.cpp)

// Code point classes used by the pre-tokenizers. Every in-range code point has kCpAny set, so a zero
// value means "outside the current piece" (as llama.cpp's empty flags do).
enum CpClass : uint8_t {
  kCpAny = 1u << 0,
  kCpLetter = 1u << 1,      // \p{L}
  kCpNumber = 1u << 2,      // \p{N}
  kCpWhitespace = 1u << 3,  // \s (Unicode White_Space)
  kCpPunct = 1u << 4,       // \p{P}
};
uint8_t codepoint_class(uint32_t cp);

// Decodes UTF-8 as llama.cpp does: each byte that does not start a well-formed sequence becomes
// U+FFFD and decoding resumes at the next byte. (Overlong forms and surrogates are accepted.)
void decode_utf8_lenient(std::string_view s, std::vector<uint32_t>& out);
void append_utf8(uint32_t cp, std::string& out);
// Length of the UTF-8 sequence that starts with byte `c`, judged from its high bits only.
inline size_t utf8_len_from_lead(unsigned char c) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[c >> 4];
}

// GPT-2 byte -> printable code point mapping.
uint32_t byte_to_unicode(uint8_t b);
int unicode_to_byte(uint32_t cp);  // -1 when cp is not in the mapping

// ---- Special-token splitting (llama.cpp tokenizer_st_partition)

struct Fragment {
  int32_t token = -1;  // >= 0: a special token; -1: raw text [begin, begin + size)
  size_t begin = 0;
  size_t size = 0;
};

class SpecialMatcher {
 public:
  // Candidates: tokens with Control, UserDefined or Unknown attributes. Longer texts take priority.
  void build(const std::vector<std::string>& texts, const std::vector<uint32_t>& attrs);
  // Same result as llama.cpp: for each candidate in priority order, every non-overlapping occurrence
  // (left to right) that lies wholly inside text not yet claimed by a higher-priority token is split
  // out. Control and Unknown tokens take part only when parse_special.
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

 private:
  int32_t child(int32_t node, uint8_t c) const;
  std::vector<int32_t> node_token_;                 // token ending at node, or -1
  std::unordered_map<uint64_t, int32_t> edges_;     // (node << 8 | byte) -> node
  std::vector<int32_t> priority_;                   // token id -> rank (0 first); -1: not special
  std::vector<uint32_t> attrs_;                     // token id -> attributes (for parse_special)
  std::vector<uint32_t> lengths_;                   // token id -> text length
  std::array<bool, 256> first_byte_{};
};

// ---- Byte-level BPE (tokenizer_bpe.cpp)

struct BpeMerge {
  int32_t rank = 0;
  int32_t result = -1;  // symbol id of the merged text, -1 when it is neither a token nor a merge part
};

struct BpeTables {
  // Symbol ids: token ids for vocabulary strings, n_vocab + k for merge parts outside the vocabulary.
  std::unordered_map<uint64_t, BpeMerge> merges;  // (left id << 32 | right id) -> merge
  std::array<int32_t, 256> byte_symbol{};         // symbol id of each byte's GPT-2 character, or -1
  std::array<std::string, 256> byte_text;         // each byte's GPT-2 character (UTF-8)
  std::array<int32_t, 256> single_byte_token{};   // token whose text is that one raw byte, or -1
};

// ---- The state behind a Tokenizer

}  // namespace specula::tok

namespace specula {

struct Tokenizer::State {
  TokenizerSpec spec;
  tok::Kind kind = tok::Kind::ByteLevelBpe;
  tok::PreType pre = tok::PreType::Default;
  bool ignore_merges = false;   // a whole pre-token that is in the vocabulary is emitted as is (llama3)
  bool clean_spaces = false;    // decode removes spaces before ?!., and some apostrophes
  std::vector<uint32_t> attrs;  // token id -> tok::Attr bits
  tok::TokenIndex token_to_id;  // keys view spec.tokens
  std::vector<std::string> pieces;  // token id -> piece with special tokens rendered
  std::vector<uint8_t> eog;         // token id -> 1 when it ends generation
  tok::SpecialMatcher specials;
  tok::BpeTables bpe;                             // ByteLevelBpe only
  std::array<int32_t, 256> spm_byte_token{};      // SentencePiece byte fallback (<0xNN>), or -1

  int32_t n_vocab() const { return static_cast<int32_t>(spec.tokens.size()); }
  int32_t lookup(std::string_view text) const {
    return token_to_id.find(text);
  }
};

namespace tok {
// Appends the tokens of raw text (no special tokens inside) to `out`.
void bpe_encode(const Tokenizer::State& st, std::string_view text, std::vector<int32_t>& out);
void spm_encode(const Tokenizer::State& st, std::string_view text, std::vector<int32_t>& out);
// Builds st.bpe from st.spec.merges (throws specula::Error on malformed merges).
void build_bpe_tables(Tokenizer::State& st);
// Pre-tokenizer split of one text fragment into pieces (code point counts), exposed for tests.
std::vector<std::string> pretokenize(PreType pre, std::string_view text);
}  // namespace tok

}  // namespace specula
