// UTF-8 helpers for the tokenizer, and a stream buffer that holds back incomplete characters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace frugal {

// Length in bytes of a UTF-8 sequence from its lead byte: 1 for ASCII, 2..4 for a valid lead
// byte, and 1 for bytes that cannot start a sequence (continuation bytes, 0xC0/0xC1, 0xF5..0xFF).
int utf8_sequence_length(uint8_t lead);

// Length of the valid UTF-8 character starting at s[i] (1..4), or 1 if the bytes there are not a
// complete, well-formed character (so the caller can step over invalid input one byte at a time).
size_t utf8_char_length(std::string_view s, size_t i);

// Appends the UTF-8 encoding of code point `cp` (must be <= 0x10FFFF).
void append_utf8(std::string& out, char32_t cp);

// Decodes the character at s[i]. Returns the code point and stores its length in *len; an
// invalid sequence yields U+FFFD with *len = 1.
char32_t decode_utf8(std::string_view s, size_t i, size_t* len);

// Byte pieces from a byte-level tokenizer may split a character across tokens. Feed pieces with
// push(); it returns the bytes that end on a character boundary and keeps an incomplete trailing
// sequence (at most 3 bytes) for the next call. Bytes that can never become a valid character are
// passed through unchanged rather than dropped, so concatenating every push() and the final
// flush() reproduces the input exactly.
class Utf8StreamBuffer {
 public:
  std::string push(std::string_view bytes);
  std::string flush();  // whatever is still held, even if incomplete
  bool empty() const { return pending_.empty(); }

 private:
  std::string pending_;
};

}  // namespace frugal
