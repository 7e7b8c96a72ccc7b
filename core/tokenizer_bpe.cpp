// Byte-level BPE (GPT-2 style) as llama.cpp's llm_tokenizer_bpe does it:
//   text -> code points (invalid UTF-8 -> U+FFFD) -> pre-tokenizer passes (each splits every current
//   piece further) -> each piece re-encoded as UTF-8 and mapped byte-wise to GPT-2 characters ->
//   merges applied lowest rank first (ties: leftmost) -> symbols looked up in the vocabulary.
// The pre-tokenizer passes are hand-written scanners with the same results as llama.cpp's regexes.
#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tokenizer_internal.h"

namespace specula::tok {

namespace {

constexpr uint32_t kOutside = 0xFFFFFFFFu;

// A text as code points with their classes; pieces are consecutive runs given by their lengths.
struct CodepointText {
  std::vector<uint32_t> cps;
  std::vector<uint8_t> cls;
};

using Pieces = std::vector<uint32_t>;  // lengths in code points, summing to cps.size()

// Cursor over one piece [begin, end): class/code point lookups return 0 / kOutside beyond the end.
struct Span {
  const CodepointText& t;
  size_t begin, end;
  uint8_t cls(size_t i) const { return i < end ? t.cls[i] : 0; }
  uint32_t cp(size_t i) const { return i < end ? t.cps[i] : kOutside; }
};

// Emits the pieces cut by `cut` (called with the current piece; returns nothing, appends lengths).
template <typename Cut>
Pieces split_each(const CodepointText& t, const Pieces& in, Cut cut) {
  Pieces out;
  out.reserve(in.size() * 2);
  size_t begin = 0;
  for (uint32_t len : in) {
    cut(Span{t, begin, begin + len}, out);
    begin += len;
  }
  return out;
}

// Matches of a one-code-point class become pieces of their own; the text between them too.
// (llama.cpp: a regex like \p{N} run through std::regex on the category-collapsed text.)
template <typename Pred>
void cut_single(const Span& s, Pieces& out, Pred pred) {
  size_t gap = s.begin;
  for (size_t i = s.begin; i < s.end; ++i) {
    if (!pred(s.t.cps[i], s.t.cls[i])) continue;
    if (i > gap) out.push_back(static_cast<uint32_t>(i - gap));
    out.push_back(1);
    gap = i + 1;
  }
  if (s.end > gap) out.push_back(static_cast<uint32_t>(s.end - gap));
}

// Maximal runs of a class become pieces; so do the runs between them (regex "[class]+").
template <typename Pred>
void cut_runs(const Span& s, Pieces& out, Pred pred) {
  size_t i = s.begin;
  while (i < s.end) {
    const bool in = pred(s.t.cps[i], s.t.cls[i]);
    size_t j = i + 1;
    while (j < s.end && pred(s.t.cps[j], s.t.cls[j]) == in) ++j;
    out.push_back(static_cast<uint32_t>(j - i));
    i = j;
  }
}

// "[0-9][0-9][0-9]": leftmost non-overlapping triples of ASCII digits.
void cut_digit_triples(const Span& s, Pieces& out) {
  auto digit = [&](size_t i) { return i < s.end && s.t.cps[i] >= '0' && s.t.cps[i] <= '9'; };
  size_t gap = s.begin;
  size_t i = s.begin;
  while (i + 3 <= s.end) {
    if (digit(i) && digit(i + 1) && digit(i + 2)) {
      if (i > gap) out.push_back(static_cast<uint32_t>(i - gap));
      out.push_back(3);
      i += 3;
      gap = i;
    } else {
      ++i;
    }
  }
  if (s.end > gap) out.push_back(static_cast<uint32_t>(s.end - gap));
}

bool is_contraction_start(const Span& s, size_t pos, bool any_case, size_t& len) {
  if (s.t.cps[pos] != '\'' || pos + 1 >= s.end) return false;
  auto low = [&](uint32_t c) { return (any_case && c >= 'A' && c <= 'Z') ? c + 32 : c; };
  const uint32_t a = low(s.t.cps[pos + 1]);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') {
    len = 2;
    return true;
  }
  if (pos + 2 < s.end) {
    const uint32_t b = low(s.t.cps[pos + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
      len = 3;
      return true;
    }
  }
  return false;
}

constexpr uint8_t kWordish = kCpWhitespace | kCpLetter | kCpNumber;

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void cut_gpt2(const Span& s, Pieces& out) {
  size_t start = s.begin;
  auto emit = [&](size_t end) {
    if (end > start) out.push_back(static_cast<uint32_t>(end - start));
    start = end;
  };
  size_t pos = s.begin;
  while (pos < s.end) {
    const uint32_t c = s.t.cps[pos];
    size_t clen = 0;
    if (is_contraction_start(s, pos, /*any_case=*/false, clen)) {
      pos += clen;
      emit(pos);
      continue;
    }
    // An optional leading space joins the class of the code point after it.
    const bool space = c == ' ';
    const uint8_t head = space ? s.cls(pos + 1) : s.cls(pos);
    if (head & kCpLetter) {
      pos += space;
      while (s.cls(pos) & kCpLetter) ++pos;
      emit(pos);
      continue;
    }
    if (head & kCpNumber) {
      pos += space;
      while (s.cls(pos) & kCpNumber) ++pos;
      emit(pos);
      continue;
    }
    if (head != 0 && !(head & kWordish)) {
      pos += space;
      while (s.cls(pos) != 0 && !(s.cls(pos) & kWordish)) ++pos;
      emit(pos);
      continue;
    }
    size_t n_ws = 0;
    while (s.cls(pos + n_ws) & kCpWhitespace) ++n_ws;
    if (n_ws > 1 && pos + n_ws < s.end) {  // \s+(?!\S): leave the last one to lead the next word
      pos += n_ws - 1;
      emit(pos);
      continue;
    }
    if (n_ws > 0) {
      pos += n_ws;
      emit(pos);
      continue;
    }
    ++pos;
    emit(pos);
  }
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
void cut_llama3(const Span& s, Pieces& out, size_t max_digits) {
  size_t start = s.begin;
  auto emit = [&](size_t end) {
    if (end > start) out.push_back(static_cast<uint32_t>(end - start));
    start = end;
  };
  auto newline = [](uint32_t c) { return c == '\r' || c == '\n'; };
  size_t pos = s.begin;
  while (pos < s.end) {
    const uint32_t c = s.t.cps[pos];
    const uint8_t cls = s.cls(pos);
    size_t clen = 0;
    if (is_contraction_start(s, pos, /*any_case=*/true, clen)) {
      pos += clen;
      emit(pos);
      continue;
    }
    if (!newline(c) && !(cls & kCpNumber) && ((cls & kCpLetter) || (s.cls(pos + 1) & kCpLetter))) {
      ++pos;
      while (s.cls(pos) & kCpLetter) ++pos;
      emit(pos);
      continue;
    }
    if (cls & kCpNumber) {
      size_t run_start = pos;
      while (s.cls(pos) & kCpNumber) {
        ++pos;
        if (pos - run_start >= max_digits) {
          emit(pos);
          run_start = pos;
        }
      }
      emit(pos);
      continue;
    }
    const bool space = c == ' ';
    const uint8_t head = space ? s.cls(pos + 1) : cls;
    if (!(head & kWordish) && cls != 0) {
      pos += space;
      while (s.cls(pos) != 0 && !(s.cls(pos) & kWordish)) ++pos;
      while (newline(s.cp(pos))) ++pos;
      emit(pos);
      continue;
    }
    size_t n_ws = 0;
    size_t after_last_newline = 0;
    while (s.cls(pos + n_ws) & kCpWhitespace) {
      if (newline(s.cp(pos + n_ws))) after_last_newline = pos + n_ws + 1;
      ++n_ws;
    }
    if (after_last_newline > 0) {
      pos = after_last_newline;
      emit(pos);
      continue;
    }
    if (n_ws > 1 && pos + n_ws < s.end) {
      pos += n_ws - 1;
      emit(pos);
      continue;
    }
    if (n_ws > 0) {
      pos += n_ws;
      emit(pos);
      continue;
    }
    ++pos;
    emit(pos);
  }
}

bool is_default_punct(uint32_t cp, uint8_t cls) {
  // [\p{P}\$\+<=>\^~\|] where llama.cpp's collapsed ASCII \p{P} is !"#%&'()*,-./:;?@[\]_{}
  if (cp < 128) {
    static constexpr std::string_view kAscii = "!\"#%&'()*,-./:;?@[\\]_{}$+<=>^~|";
    return kAscii.find(static_cast<char>(cp)) != std::string_view::npos;
  }
  return (cls & kCpPunct) && !(cls & kCpWhitespace);
}

Pieces pretokenize_pieces(PreType pre, const CodepointText& t) {
  Pieces p{static_cast<uint32_t>(t.cps.size())};
  if (t.cps.empty()) return {};
  auto number = [](uint32_t, uint8_t cls) { return (cls & kCpNumber) != 0; };
  switch (pre) {
    case PreType::Default:
      p = split_each(t, p, [](const Span& s, Pieces& o) { cut_runs(s, o, is_default_punct); });
      p = split_each(t, p, cut_gpt2);
      p = split_each(t, p, [&](const Span& s, Pieces& o) { cut_runs(s, o, number); });
      p = split_each(t, p, cut_digit_triples);
      break;
    case PreType::Gpt2:
      p = split_each(t, p, cut_gpt2);
      break;
    case PreType::Starcoder:
      p = split_each(t, p, [&](const Span& s, Pieces& o) { cut_single(s, o, number); });
      p = split_each(t, p, cut_gpt2);
      break;
    case PreType::Llama3:
      p = split_each(t, p, [](const Span& s, Pieces& o) { cut_llama3(s, o, 3); });
      break;
    case PreType::Qwen2:
      p = split_each(t, p, [](const Span& s, Pieces& o) { cut_llama3(s, o, 1); });
      break;
  }
  return p;
}

void to_codepoints(std::string_view text, CodepointText& t) {
  decode_utf8_lenient(text, t.cps);
  t.cls.resize(t.cps.size());
  for (size_t i = 0; i < t.cps.size(); ++i) t.cls[i] = codepoint_class(t.cps[i]);
}

struct Symbol {
  int32_t id;  // symbol id (token id, n_vocab + k for merge parts, -1 otherwise)
  int32_t prev, next;
  uint32_t begin, size;  // bytes of the piece
};

struct Candidate {
  int32_t rank;
  int32_t left, right;
  uint32_t size;
  int32_t result;
};

// std::push_heap/pop_heap keep the "largest" on top: lowest rank, then leftmost.
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

// Working buffers reused across the pieces of one encode() call.
struct BpeScratch {
  CodepointText text;
  std::string piece;
  std::string encoded;
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

void add_candidate(const BpeTables& tables, BpeScratch& w, int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const Symbol& l = w.symbols[left];
  const Symbol& r = w.symbols[right];
  if (l.id < 0 || r.id < 0) return;
  const uint64_t key = (uint64_t(uint32_t(l.id)) << 32) | uint32_t(r.id);
  auto it = tables.merges.find(key);
  if (it == tables.merges.end()) return;
  w.heap.push_back(Candidate{it->second.rank, left, right, l.size + r.size, it->second.result});
  std::push_heap(w.heap.begin(), w.heap.end(), CandidateOrder{});
}

void encode_piece(const Tokenizer::State& st, BpeScratch& w, std::vector<int32_t>& out) {
  const BpeTables& tables = st.bpe;
  const std::string& piece = w.piece;
  if (st.ignore_merges) {
    w.encoded.clear();
    for (unsigned char b : piece) w.encoded += tables.byte_text[b];
    const int32_t id = st.lookup(w.encoded);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  w.symbols.clear();
  w.heap.clear();
  const int32_t n = static_cast<int32_t>(piece.size());
  for (int32_t i = 0; i < n; ++i) {
    const unsigned char b = static_cast<unsigned char>(piece[i]);
    w.symbols.push_back(Symbol{tables.byte_symbol[b], i - 1, i + 1 < n ? i + 1 : -1, uint32_t(i), 1});
  }
  for (int32_t i = 1; i < n; ++i) add_candidate(tables, w, i - 1, i);
  while (!w.heap.empty()) {
    std::pop_heap(w.heap.begin(), w.heap.end(), CandidateOrder{});
    const Candidate c = w.heap.back();
    w.heap.pop_back();
    Symbol& l = w.symbols[c.left];
    Symbol& r = w.symbols[c.right];
    // Stale: one side was merged away, or the right side grew since the candidate was queued.
    if (l.size == 0 || r.size == 0 || l.size + r.size != c.size) continue;
    l.size += r.size;
    l.id = c.result;
    l.next = r.next;
    r.size = 0;
    if (l.next >= 0) w.symbols[l.next].prev = c.left;
    add_candidate(tables, w, l.prev, c.left);
    add_candidate(tables, w, c.left, l.next);
  }
  const int32_t n_vocab = st.n_vocab();
  for (int32_t i = n > 0 ? 0 : -1; i != -1; i = w.symbols[i].next) {
    const Symbol& s = w.symbols[i];
    if (s.id >= 0 && s.id < n_vocab) {
      out.push_back(s.id);
      continue;
    }
    // Not a token: llama.cpp looks up each byte of the GPT-2-mapped text as a one-byte token.
    for (uint32_t k = s.begin; k < s.begin + s.size; ++k) {
      for (unsigned char e : tables.byte_text[static_cast<unsigned char>(piece[k])]) {
        const int32_t id = tables.single_byte_token[e];
        if (id >= 0) out.push_back(id);
      }
    }
  }
}

}  // namespace

void bpe_encode(const Tokenizer::State& st, std::string_view text, std::vector<int32_t>& out) {
  thread_local BpeScratch w;
  to_codepoints(text, w.text);
  const Pieces pieces = pretokenize_pieces(st.pre, w.text);
  size_t begin = 0;
  for (uint32_t len : pieces) {
    w.piece.clear();
    for (size_t i = begin; i < begin + len; ++i) append_utf8(w.text.cps[i], w.piece);
    begin += len;
    encode_piece(st, w, out);
  }
}

std::vector<std::string> pretokenize(PreType pre, std::string_view text) {
  CodepointText t;
  to_codepoints(text, t);
  std::vector<std::string> words;
  size_t begin = 0;
  for (uint32_t len : pretokenize_pieces(pre, t)) {
    std::string w;
    for (size_t i = begin; i < begin + len; ++i) append_utf8(t.cps[i], w);
    words.push_back(std::move(w));
    begin += len;
  }
  return words;
}

void build_bpe_tables(Tokenizer::State& st) {
  BpeTables& tables = st.bpe;
  const int32_t n_vocab = st.n_vocab();
  TokenMap extra;  // merge parts that are not tokens
  auto symbol_of = [&](const std::string& s, bool create) -> int32_t {
    const int32_t id = st.lookup(s);
    if (id >= 0) return id;
    auto it = extra.find(s);
    if (it != extra.end()) return it->second;
    if (!create) return -1;
    const int32_t sym = n_vocab + static_cast<int32_t>(extra.size());
    extra.emplace(s, sym);
    return sym;
  };
  // First pass: give every merge part a symbol id, so that merge results can be resolved.
  struct Parsed {
    std::string left, right;
  };
  std::vector<Parsed> parsed;
  parsed.reserve(st.spec.merges.size());
  for (size_t i = 0; i < st.spec.merges.size(); ++i) {
    const std::string& m = st.spec.merges[i];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos) fail("tokenizer merge #{} '{}' is not of the form 'left right'", i, m);
    parsed.push_back({m.substr(0, sp), m.substr(sp + 1)});
    symbol_of(parsed.back().left, true);
    symbol_of(parsed.back().right, true);
  }
  tables.merges.reserve(parsed.size() * 2);
  for (size_t i = 0; i < parsed.size(); ++i) {
    const int32_t a = symbol_of(parsed[i].left, false);
    const int32_t b = symbol_of(parsed[i].right, false);
    const int32_t result = symbol_of(parsed[i].left + parsed[i].right, false);
    const uint64_t key = (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
    tables.merges.emplace(key, BpeMerge{static_cast<int32_t>(i), result});  // first (lowest) rank wins
  }
  for (int b = 0; b < 256; ++b) {
    std::string text;
    append_utf8(byte_to_unicode(static_cast<uint8_t>(b)), text);
    tables.byte_text[b] = text;
    tables.byte_symbol[b] = symbol_of(text, false);
    tables.single_byte_token[b] = st.lookup(std::string(1, static_cast<char>(b)));
  }
}

}  // namespace specula::tok
