#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

#include "tokenizer/utf8.h"

namespace frugal::tokenizer_internal {

Result<std::vector<std::string>> patterns_for_pre(std::string_view pre) {
  // Names as written by llama.cpp's converter (convert_hf_to_gguf.py, get_vocab_base_pre).
  if (pre == "smollm" || pre == "starcoder") return std::vector<std::string>{kDigitsPattern, kGpt2Pattern};
  if (pre == "gpt-2" || pre == "default") return std::vector<std::string>{kGpt2Pattern};
  if (pre == "llama-bpe" || pre == "llama3") return std::vector<std::string>{kLlama3Pattern};
  return Unsupported(fmt::format(
      "pre-tokenizer '{}' is not supported (supported: smollm, starcoder, gpt-2, default, llama-bpe)",
      pre));
}

struct PreTokenizer::Stage {
  pcre2_code* code = nullptr;
  ~Stage() { pcre2_code_free(code); }
};

Result<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& patterns) {
  PreTokenizer p;
  for (const std::string& pat : patterns) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile((PCRE2_SPTR)pat.data(), pat.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                                     &err_off, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      return InvalidArgument(fmt::format("pre-tokenizer regex /{}/ does not compile at offset {}: {}",
                                         pat, (size_t)err_off, (const char*)msg));
    }
    auto stage = std::make_shared<Stage>();
    stage->code = code;
    // JIT is an optimization only: if the library was built without it, matching still works.
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    p.stages_.push_back(std::move(stage));
  }
  return p;
}

namespace {

// Splits `text` by the matches of `code`, isolating matches and keeping gaps.
void split_stage(const pcre2_code* code, pcre2_match_data* md, std::string_view text,
                 std::vector<std::string_view>& out) {
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  size_t pos = 0;  // next byte not yet emitted
  size_t search = 0;
  while (search < text.size()) {
    int rc = pcre2_match(code, (PCRE2_SPTR)text.data(), text.size(), search, 0, md, nullptr);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)  // e.g. JIT stack exhausted: retry interpreted
      rc = pcre2_match(code, (PCRE2_SPTR)text.data(), text.size(), search, PCRE2_NO_JIT, md, nullptr);
    if (rc < 0) break;  // no match (or a persistent matching error): the rest is one gap
    const size_t b = ov[0], e = ov[1];
    if (e == b) {  // an empty match: step over one character and try again
      search = b + utf8_char_length(text, b);
      continue;
    }
    if (b > pos) out.push_back(text.substr(pos, b - pos));
    out.push_back(text.substr(b, e - b));
    pos = search = e;
  }
  if (pos < text.size()) out.push_back(text.substr(pos));
}

}  // namespace

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  if (stages_.empty()) {
    out.push_back(text);
    return;
  }
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  if (md == nullptr) {  // out of memory: keep the text whole rather than lose it
    out.push_back(text);
    return;
  }
  std::vector<std::string_view> cur{text}, next;
  for (size_t s = 0; s < stages_.size(); ++s) {
    std::vector<std::string_view>& dst = (s + 1 == stages_.size()) ? out : next;
    for (std::string_view piece : cur) split_stage(stages_[s]->code, md, piece, dst);
    if (&dst == &next) {
      cur.swap(next);
      next.clear();
    }
  }
  pcre2_match_data_free(md);
}

}  // namespace frugal::tokenizer_internal
