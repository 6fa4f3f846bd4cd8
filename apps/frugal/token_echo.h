// Streams generated tokens to stdout as they arrive (`frugal run`, CPU and GPU): text pieces
// through the tokenizer, holding back incomplete UTF-8 sequences between tokens, or token ids
// when the model has no tokenizer. finish() ends the line only if something was printed.
// print_speed: the prompt and decode speed lines `frugal run` prints on stderr afterwards.
#pragma once
#include <cstdint>
#include <cstdio>

#include "model/model.h"
#include "runtime/generate.h"
#include "tokenizer/utf8.h"

namespace frugal::cli {

class TokenEcho {
 public:
  explicit TokenEcho(const Model& m) : m_(m) {}
  // The on_token callback of generate(): always continues.
  bool operator()(int32_t tok) {
    printed_ = true;
    if (m_.tokenizer) {
      std::fputs(out_.push(m_.tokenizer->token_to_piece(tok)).c_str(), stdout);
    } else {
      std::printf("%d ", tok);
    }
    std::fflush(stdout);
    return true;
  }
  void finish() {
    if (!printed_) return;
    std::fputs(out_.flush().c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  const Model& m_;
  Utf8StreamBuffer out_;
  bool printed_ = false;
};

inline void print_speed(const GenerateStats& s) {
  std::fprintf(stderr, "frugal: prompt %lld tokens in %.3f s = %.1f tok/s\n",
               (long long)s.n_prompt, s.prompt_seconds,
               s.prompt_seconds > 0 ? s.n_prompt / s.prompt_seconds : 0.0);
  std::fprintf(stderr, "frugal: decode %lld tokens in %.3f s = %.1f tok/s\n",
               (long long)s.n_decode_steps, s.decode_seconds,
               s.decode_seconds > 0 ? s.n_decode_steps / s.decode_seconds : 0.0);
}

}  // namespace frugal::cli
