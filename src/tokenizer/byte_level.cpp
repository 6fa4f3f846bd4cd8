#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace frugal::tokenizer_internal {
namespace {

struct ByteTables {
  std::array<char32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // code points < 256 + 68; -1 where not in the alphabet
  ByteTables() {
    from_cp.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_cp[b] = printable ? (char32_t)b : next++;
      from_cp[to_cp[b]] = (int16_t)b;
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

char32_t byte_to_codepoint(uint8_t byte) { return tables().to_cp[byte]; }

std::optional<uint8_t> codepoint_to_byte(char32_t cp) {
  if (cp >= tables().from_cp.size() || tables().from_cp[cp] < 0) return std::nullopt;
  return (uint8_t)tables().from_cp[cp];
}

std::string byte_level_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len = 0;
    const char32_t cp = decode_utf8(text, i, &len);
    const auto b = (len > 1 || cp < 0x80) ? codepoint_to_byte(cp) : std::nullopt;
    if (b) {
      out.push_back((char)*b);
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) append_utf8(out, byte_to_codepoint(c));
  return out;
}

}  // namespace frugal::tokenizer_internal
