#include "tokenizer/utf8.h"

namespace frugal {

int utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 1;
}

namespace {
inline bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

// Checks the second byte's range restrictions (no overlongs, no surrogates, <= U+10FFFF).
inline bool second_byte_ok(uint8_t lead, uint8_t b1) {
  if (!is_cont(b1)) return false;
  if (lead == 0xE0) return b1 >= 0xA0;
  if (lead == 0xED) return b1 <= 0x9F;
  if (lead == 0xF0) return b1 >= 0x90;
  if (lead == 0xF4) return b1 <= 0x8F;
  return true;
}
}  // namespace

size_t utf8_char_length(std::string_view s, size_t i) {
  const uint8_t lead = (uint8_t)s[i];
  const int n = utf8_sequence_length(lead);
  if (n == 1 || i + n > s.size()) return 1;
  if (!second_byte_ok(lead, (uint8_t)s[i + 1])) return 1;
  for (int k = 2; k < n; ++k)
    if (!is_cont((uint8_t)s[i + k])) return 1;
  return (size_t)n;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back((char)cp);
  } else if (cp < 0x800) {
    out.push_back((char)(0xC0 | (cp >> 6)));
    out.push_back((char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back((char)(0xE0 | (cp >> 12)));
    out.push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back((char)(0x80 | (cp & 0x3F)));
  } else {
    out.push_back((char)(0xF0 | (cp >> 18)));
    out.push_back((char)(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back((char)(0x80 | (cp & 0x3F)));
  }
}

char32_t decode_utf8(std::string_view s, size_t i, size_t* len) {
  const size_t n = utf8_char_length(s, i);
  const uint8_t lead = (uint8_t)s[i];
  *len = n;
  if (n == 1) return lead < 0x80 ? (char32_t)lead : (char32_t)0xFFFD;
  char32_t cp = lead & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | ((uint8_t)s[i + k] & 0x3F);
  return cp;
}

std::string Utf8StreamBuffer::push(std::string_view bytes) {
  pending_.append(bytes);
  // Find where the held-back tail starts: the last lead byte, if the bytes after it are a
  // proper prefix of a well-formed character.
  size_t keep_from = pending_.size();
  const size_t n = pending_.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    const uint8_t b = (uint8_t)pending_[i];
    if (is_cont(b)) continue;
    const int need = utf8_sequence_length(b);
    if (need > (int)back) {
      bool ok = back < 2 || second_byte_ok(b, (uint8_t)pending_[i + 1]);
      for (size_t k = 2; ok && k < back; ++k) ok = is_cont((uint8_t)pending_[i + k]);
      if (ok) keep_from = i;
    }
    break;
  }
  std::string out = pending_.substr(0, keep_from);
  pending_.erase(0, keep_from);
  return out;
}

std::string Utf8StreamBuffer::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace frugal
