// Lookup tables behind frugal::Tokenizer (internal to src/tokenizer/).
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace frugal {

namespace tokenizer_internal {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A special token as matched in input text.
struct SpecialEntry {
  std::string_view text;  // view into the spec's token string
  int32_t id;
  bool always;  // USER_DEFINED: matched even when parse_special is false
};

struct TokenizerTables {
  bool byte_level = false;  // "gpt2" model; otherwise "llama"
  TokenIndex index;    // stored text → id (the last duplicate wins)
  std::vector<std::string> pieces;         // per id: the bytes it decodes to
  std::vector<uint8_t> is_control;         // per id: CONTROL or UNKNOWN
  std::vector<uint8_t> is_eog;             // per id: ends generation
  MergeTable merges;
  // "gpt2": the token of each byte's alphabet character; "llama": the <0xXX> token. kNoToken if
  // the vocabulary lacks it.
  std::array<int32_t, 256> byte_tokens{};
  PreTokenizer pre;    // "gpt2" only
  // Special tokens by first byte, longest first.
  std::array<std::vector<SpecialEntry>, 256> specials;
  bool has_specials = false;
};

}  // namespace tokenizer_internal
}  // namespace frugal
