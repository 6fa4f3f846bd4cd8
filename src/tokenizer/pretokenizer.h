// Regex pre-tokenizer: splits text into pieces that BPE encodes independently.
//
// A pre-tokenizer is a list of stages. Each stage is a PCRE2 pattern (UTF + Unicode properties)
// applied to every piece produced by the previous stage, "isolating" its matches: each match and
// each non-matching gap between matches becomes its own piece, so no byte is ever lost and the
// pieces concatenate back to the input. (This is Hugging Face's Split(behavior="Isolated") and
// llama.cpp's regex sequence.) Invalid UTF-8 in the input is tolerated: PCRE2 never matches it,
// so it ends up in gap pieces.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace frugal::tokenizer_internal {

// GPT-2's pattern (also HF ByteLevel(use_regex=true)).
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3's pattern.
inline constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Every digit on its own (HF Digits(individual_digits=true)).
inline constexpr const char* kDigitsPattern = R"(\p{N})";

// The stage patterns for a GGUF `tokenizer.ggml.pre` name, or Unsupported naming it.
Result<std::vector<std::string>> patterns_for_pre(std::string_view pre);

class PreTokenizer {
 public:
  // Compiles the stages (JIT when available). InvalidArgument with PCRE2's message and offset if a
  // pattern does not compile. An empty list yields a pre-tokenizer that returns the text whole.
  static Result<PreTokenizer> create(const std::vector<std::string>& patterns);

  // Appends the pieces of `text` (views into it, in order, none empty) to `out`.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  size_t num_stages() const { return stages_.size(); }

 private:
  struct Stage;
  std::vector<std::shared_ptr<const Stage>> stages_;
};

}  // namespace frugal::tokenizer_internal
