// SentencePiece BPE as llama.cpp's llm_tokenizer_spm does it: the (space-escaped) text is cut into
// UTF-8 characters (lengths judged from the lead byte only), adjacent pairs whose concatenation is a
// vocabulary entry are merged highest score first (ties: leftmost), and every final symbol that is not
// a token falls back to its bytes as <0xNN> tokens.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/tokenizer_internal.h"

namespace specula::tok {

namespace {

struct Symbol {
  int32_t prev, next;
  uint32_t begin, size;  // bytes of the text; size 0 once merged into its left neighbour
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t size;
};

// std::push_heap/pop_heap keep the "largest" on top: highest score, then leftmost.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void spm_encode(const Tokenizer::State& st, std::string_view text, std::vector<int32_t>& out) {
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Bigram> storage;
  symbols.clear();
  storage.clear();
  const size_t n = text.size();
  for (size_t off = 0; off < n;) {
    const size_t len = std::min(utf8_len_from_lead(static_cast<unsigned char>(text[off])), n - off);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{index - 1, off + len == n ? -1 : index + 1, uint32_t(off), uint32_t(len)});
    off += len;
  }
  std::vector<Bigram>& heap = storage;
  const bool have_scores = !st.spec.scores.empty();
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const uint32_t size = l.size + r.size;  // adjacent symbols are contiguous in the text
    const int32_t id = st.lookup(text.substr(l.begin, size));
    if (id < 0) return;
    heap.push_back(Bigram{have_scores ? st.spec.scores[id] : 0.0f, left, right, size});
    std::push_heap(heap.begin(), heap.end(), BigramOrder{});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BigramOrder{});
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.size == 0 || r.size == 0 || l.size + r.size != b.size) continue;  // stale
    l.size += r.size;
    r.size = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    const int32_t id = st.lookup(text.substr(s.begin, s.size));
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (uint32_t k = s.begin; k < s.begin + s.size; ++k) {
      const unsigned char byte = static_cast<unsigned char>(text[k]);
      const int32_t byte_id = st.spm_byte_token[byte];
      if (byte_id >= 0) {
        out.push_back(byte_id);
      } else if (st.spec.unk >= 0) {
        out.push_back(st.spec.unk);
      } else {
        fail("tokenizer: byte 0x{:02X} has no <0x{:02X}> token and the vocabulary has no unknown token", byte,
             byte);
      }
    }
  }
}

}  // namespace specula::tok
