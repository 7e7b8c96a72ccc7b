// Unicode helpers for the tokenizers: lenient UTF-8 decoding (llama.cpp semantics), code point
// classes from ICU, and the GPT-2 byte <-> unicode mapping.
#include <unicode/uchar.h>

#include <array>

#include "core/tokenizer_internal.h"

namespace specula::tok {

namespace {

uint8_t classify_with_icu(uint32_t cp) {
  uint8_t c = kCpAny;
  if (cp > 0x10FFFF) return c;
  const UChar32 u = static_cast<UChar32>(cp);
  const uint32_t mask = U_GET_GC_MASK(u);
  if (mask & U_GC_L_MASK) c |= kCpLetter;
  if (mask & U_GC_N_MASK) c |= kCpNumber;
  if (mask & U_GC_P_MASK) c |= kCpPunct;
  if (u_hasBinaryProperty(u, UCHAR_WHITE_SPACE)) c |= kCpWhitespace;
  return c;
}

struct AsciiClasses {
  std::array<uint8_t, 128> table{};
  AsciiClasses() {
    for (uint32_t cp = 0; cp < 128; ++cp) table[cp] = classify_with_icu(cp);
  }
};

// The 188 printable bytes map to themselves; the other 68 to U+0100.. in byte order.
struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 512> from_cp{};  // all mapped code points are < 0x200
  ByteMap() {
    from_cp.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? b : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

uint8_t codepoint_class(uint32_t cp) {
  static const AsciiClasses ascii;
  if (cp < 128) return ascii.table[cp];
  return classify_with_icu(cp);
}

void decode_utf8_lenient(std::string_view s, std::vector<uint32_t>& out) {
  out.clear();
  out.reserve(s.size());
  const size_t n = s.size();
  auto cont = [&](size_t i) { return (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; };
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      i += 1;
    } else if ((b0 & 0x40) == 0) {  // stray continuation byte
      out.push_back(0xFFFD);
      i += 1;
    } else if ((b0 & 0x20) == 0) {
      if (i + 1 < n && cont(i + 1)) {
        out.push_back((uint32_t(b0 & 0x1F) << 6) | (uint32_t(s[i + 1]) & 0x3F));
        i += 2;
      } else {
        out.push_back(0xFFFD);
        i += 1;
      }
    } else if ((b0 & 0x10) == 0) {
      if (i + 2 < n && cont(i + 1) && cont(i + 2)) {
        out.push_back((uint32_t(b0 & 0x0F) << 12) | ((uint32_t(s[i + 1]) & 0x3F) << 6) | (uint32_t(s[i + 2]) & 0x3F));
        i += 3;
      } else {
        out.push_back(0xFFFD);
        i += 1;
      }
    } else if ((b0 & 0x08) == 0) {
      if (i + 3 < n && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        uint32_t cp = (uint32_t(b0 & 0x07) << 18) | ((uint32_t(s[i + 1]) & 0x3F) << 12) |
                      ((uint32_t(s[i + 2]) & 0x3F) << 6) | (uint32_t(s[i + 3]) & 0x3F);
        // F5..F7 lead bytes decode beyond U+10FFFF, which llama.cpp cannot re-encode (it throws);
        // treat them as replacement characters instead.
        out.push_back(cp > 0x10FFFF ? 0xFFFD : cp);
        i += 4;
      } else {
        out.push_back(0xFFFD);
        i += 1;
      }
    } else {
      out.push_back(0xFFFD);
      i += 1;
    }
  }
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((cp >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t byte_to_unicode(uint8_t b) { return byte_map().to_cp[b]; }

int unicode_to_byte(uint32_t cp) { return cp < 512 ? byte_map().from_cp[cp] : -1; }

}  // namespace specula::tok
