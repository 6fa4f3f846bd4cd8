// Tokenizer::from_gguf: the tokenizer.ggml.* metadata keys written by llama.cpp's converter.
#include <fmt/format.h>

#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace frugal {

namespace {

// An optional token id key: -1 when absent.
Result<int32_t> optional_id(const gguf::GgufFile& f, std::string_view key) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) return -1;
  FRUGAL_ASSIGN_OR_RETURN(int64_t id, v->as_i64(key));
  if (id < -1 || id > INT32_MAX) return Corrupt(fmt::format("{} = {} is not a token id", key, id));
  return (int32_t)id;
}

Result<bool> optional_bool(const gguf::GgufFile& f, std::string_view key, bool dflt) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) return dflt;
  return v->as_bool(key);
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const gguf::GgufFile& f) {
  TokenizerSpec s;
  FRUGAL_ASSIGN_OR_RETURN(s.model, f.get_string("tokenizer.ggml.model"));
  if (s.model != "gpt2" && s.model != "llama")
    return Unsupported(fmt::format("tokenizer.ggml.model '{}' is not supported (supported: gpt2, llama)",
                                   s.model));
  if (f.find("tokenizer.ggml.pre") != nullptr) {
    FRUGAL_ASSIGN_OR_RETURN(s.pre, f.get_string("tokenizer.ggml.pre"));
  }
  FRUGAL_ASSIGN_OR_RETURN(s.tokens, f.get_string_array("tokenizer.ggml.tokens"));
  if (f.find("tokenizer.ggml.scores") != nullptr) {
    FRUGAL_ASSIGN_OR_RETURN(s.scores, f.get_f32_array("tokenizer.ggml.scores"));
  }
  if (f.find("tokenizer.ggml.token_type") != nullptr) {
    FRUGAL_ASSIGN_OR_RETURN(s.token_types, f.get_i32_array("tokenizer.ggml.token_type"));
  }
  if (f.find("tokenizer.ggml.merges") != nullptr) {
    FRUGAL_ASSIGN_OR_RETURN(s.merges, f.get_string_array("tokenizer.ggml.merges"));
  } else if (s.model == "gpt2") {
    return Corrupt("byte-level BPE tokenizer has no tokenizer.ggml.merges");
  }
  FRUGAL_ASSIGN_OR_RETURN(s.bos, optional_id(f, "tokenizer.ggml.bos_token_id"));
  FRUGAL_ASSIGN_OR_RETURN(s.eos, optional_id(f, "tokenizer.ggml.eos_token_id"));
  FRUGAL_ASSIGN_OR_RETURN(s.unk, optional_id(f, "tokenizer.ggml.unknown_token_id"));
  FRUGAL_ASSIGN_OR_RETURN(s.pad, optional_id(f, "tokenizer.ggml.padding_token_id"));
  FRUGAL_ASSIGN_OR_RETURN(s.eot, optional_id(f, "tokenizer.ggml.eot_token_id"));
  FRUGAL_ASSIGN_OR_RETURN(s.eom, optional_id(f, "tokenizer.ggml.eom_token_id"));
  // llama.cpp's defaults when the keys are absent: SentencePiece adds BOS and the space prefix.
  const bool spm = s.model == "llama";
  FRUGAL_ASSIGN_OR_RETURN(s.add_bos, optional_bool(f, "tokenizer.ggml.add_bos_token", spm));
  FRUGAL_ASSIGN_OR_RETURN(s.add_eos, optional_bool(f, "tokenizer.ggml.add_eos_token", false));
  FRUGAL_ASSIGN_OR_RETURN(s.add_space_prefix,
                          optional_bool(f, "tokenizer.ggml.add_space_prefix", spm));
  // Llama 3 keeps a pre-token that is itself a vocabulary entry whole (HF ignore_merges).
  s.ignore_merges = s.model == "gpt2" && s.pre == "llama-bpe";
  if (f.find("tokenizer.chat_template") != nullptr) {
    FRUGAL_ASSIGN_OR_RETURN(s.chat_template, f.get_string("tokenizer.chat_template"));
  }
  return create(std::move(s));
}

}  // namespace frugal
