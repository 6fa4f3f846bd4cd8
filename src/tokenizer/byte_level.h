// GPT-2 byte-level alphabet: every byte 0..255 is written as one printable Unicode character, so
// byte-level BPE vocabularies are plain strings (a space is "Ġ" U+0120, a newline "Ċ" U+010A).
// Printable bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF map to the same code point; the other 68
// bytes map, in increasing byte order, to U+0100, U+0101, ...
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace frugal::tokenizer_internal {

// The code point that stands for `byte`.
char32_t byte_to_codepoint(uint8_t byte);
// The byte a code point stands for, or nullopt if `cp` is not in the alphabet.
std::optional<uint8_t> codepoint_to_byte(char32_t cp);

// "Ġhello" → " hello". Characters outside the alphabet are kept as their own UTF-8 bytes.
std::string byte_level_decode(std::string_view token_text);
// " hello" → "Ġhello".
std::string byte_level_encode(std::string_view bytes);

}  // namespace frugal::tokenizer_internal
