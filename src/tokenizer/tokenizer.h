// Text ↔ token ids for Llama-family models.
//
// Two models are supported:
//  * "gpt2": byte-level BPE (SmolLM, Llama 3, GPT-2, StarCoder). Text is split by special tokens,
//    then by the pre-tokenizer's regexes; each piece's bytes become the byte-alphabet symbols
//    (see byte_level.h) and are merged by merge-list rank. A byte whose alphabet character is
//    not in the vocabulary is dropped (Hugging Face and llama.cpp do the same).
//  * "llama": SentencePiece-style BPE (Llama 1/2, Mistral v0.1, TinyLlama). Spaces become "▁", a
//    "▁" is prepended to each text fragment when add_space_prefix, characters are merged by the
//    merged piece's score (or merge rank when the vocabulary came with a merge list), characters
//    missing from the vocabulary fall back to <0xXX> byte tokens, else to unk.
//
// Special tokens: CONTROL and UNKNOWN tokens are matched in the text only when parse_special;
// USER_DEFINED tokens are always matched (llama.cpp's and Hugging Face's behaviour). Matching is
// leftmost-longest, and a matched special token is never split.
//
// A Tokenizer is immutable after creation and safe to use from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace frugal {

namespace gguf {
class GgufFile;
}
namespace tokenizer_internal {
struct TokenizerTables;
}

// GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct TokenizerSpec {
  std::string model;  // "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE)
  // Pre-tokenizer name as in GGUF tokenizer.ggml.pre ("smollm", "llama-bpe", "gpt-2", "default").
  // Used for "gpt2" only, and only when pre_patterns is empty.
  std::string pre = "default";
  // Explicit pre-tokenizer stages (PCRE2 patterns, see pretokenizer.h); overrides `pre`.
  std::vector<std::string> pre_patterns;
  std::vector<std::string> tokens;   // token text as stored (byte-alphabet text for "gpt2")
  std::vector<float> scores;         // per token; "llama" without merges needs them
  std::vector<int32_t> token_types;  // per token, TokenType values; empty = all normal
  std::vector<std::string> merges;   // "left right", best first; required for "gpt2"
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  int32_t eot = -1, eom = -1;        // end-of-turn / end-of-message, when the model names them
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;  // "llama" only: prepend "▁" to each text fragment
  bool byte_fallback = true;     // "llama" only: characters without a token become <0xXX> tokens
                                 // (when the vocabulary has them), else unk
  bool ignore_merges = false;    // "gpt2": a piece that is a whole vocabulary token is kept as is
  std::string chat_template;     // Jinja source, as found; see chat_template.h
};

class Tokenizer {
 public:
  // Validates the spec (ids in range, token_types/scores sizes, merges naming known tokens)
  // and builds the lookup tables.
  static Result<Tokenizer> create(TokenizerSpec spec);
  // From GGUF metadata (tokenizer.ggml.* and tokenizer.chat_template).
  static Result<Tokenizer> from_gguf(const gguf::GgufFile& file);
  // From a Hugging Face tokenizer.json (model type BPE). When the file is named "tokenizer.json"
  // and a tokenizer_config.json lies beside it, bos/eos/add_bos/chat_template are read from it.
  static Result<Tokenizer> from_tokenizer_json(const std::string& path);

  // Token ids for `text`. add_special: prepend bos / append eos as the spec's add_bos/add_eos say.
  // parse_special: recognise control tokens such as "<|im_start|>" written in the text.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Concatenated bytes of the tokens. Control/unknown tokens are written as their text unless
  // skip_special. "llama": the space of the first text piece is dropped when add_space_prefix
  // (the inverse of the prefix encode adds). OutOfRange naming the id if any id is invalid.
  Result<std::string> decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // The bytes token `id` stands for (may be part of a UTF-8 character; see Utf8StreamBuffer).
  // Control tokens give their text. Empty for an invalid id.
  std::string token_to_piece(int32_t id) const;
  // The token's text as stored in the vocabulary (byte-alphabet for "gpt2"); empty if invalid.
  std::string_view token_text(int32_t id) const;
  std::optional<int32_t> token_id(std::string_view text) const;  // by stored text
  TokenType token_type(int32_t id) const;
  bool is_control(int32_t id) const;  // CONTROL or UNKNOWN: not text the model should print
  // True for eos, eot, eom, and control tokens that end a turn in common templates
  // (<|im_end|>, <|endoftext|>, <|eot_id|>, <|eom_id|>, <|end|>, <end_of_turn>).
  bool is_end_of_generation(int32_t id) const;

  int32_t vocab_size() const { return (int32_t)spec_->tokens.size(); }
  int32_t bos() const { return spec_->bos; }
  int32_t eos() const { return spec_->eos; }
  int32_t unk() const { return spec_->unk; }
  int32_t pad() const { return spec_->pad; }
  bool add_bos() const { return spec_->add_bos; }
  const std::string& model() const { return spec_->model; }
  const std::string& pre() const { return spec_->pre; }
  const std::string& chat_template() const { return spec_->chat_template; }
  const TokenizerSpec& spec() const { return *spec_; }

 private:
  Tokenizer() = default;
  std::shared_ptr<const TokenizerSpec> spec_;
  std::shared_ptr<const tokenizer_internal::TokenizerTables> t_;
};

}  // namespace frugal
