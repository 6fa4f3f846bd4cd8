// Tokenizer::encode: special-token splitting, then byte-level or SentencePiece BPE per fragment.
#include <string>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_tables.h"
#include "tokenizer/utf8.h"

namespace frugal {

using namespace tokenizer_internal;

namespace {

struct EncodeState {
  BpeScratch scratch;
  std::vector<int32_t> word;
  std::vector<std::string_view> pieces;
  std::string buf;
};

// Byte-level BPE over one fragment of text (no special tokens inside).
void encode_byte_level(const TokenizerTables& t, const TokenizerSpec& spec, std::string_view text,
                       EncodeState& st, std::vector<int32_t>& out) {
  st.pieces.clear();
  t.pre.split(text, st.pieces);
  for (std::string_view piece : st.pieces) {
    if (spec.ignore_merges) {
      st.buf = byte_level_encode(piece);
      if (auto it = t.index.find(std::string_view(st.buf)); it != t.index.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    st.word.resize(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) st.word[i] = t.byte_tokens[(uint8_t)piece[i]];
    bpe_merge(t.merges, st.word, st.scratch);
    // A byte the vocabulary lacks (SmolLM2 has no token for 0xC0, 0xF5..0xFF, some control
    // bytes) is dropped, as Hugging Face and llama.cpp do.
    for (int32_t id : st.word)
      if (id != kNoToken) out.push_back(id);
  }
}

// SentencePiece BPE over one fragment: " " → "▁", optional "▁" prefix, merges over characters,
// then byte fallback for characters the vocabulary lacks.
void encode_spm(const TokenizerTables& t, const TokenizerSpec& spec, std::string_view text,
                bool add_prefix, EncodeState& st, std::vector<int32_t>& out) {
  static constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581
  std::string& s = st.buf;
  s.clear();
  if (add_prefix) s.append(kSpace);
  for (char c : text) {
    if (c == ' ') {
      s.append(kSpace);
    } else {
      s.push_back(c);
    }
  }
  // Symbols are characters; those without a token become kNoToken and never merge. Their byte
  // ranges are kept in order so the fallback can find them again after merging.
  st.word.clear();
  st.pieces.clear();
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_char_length(s, i);
    const std::string_view ch(s.data() + i, len);
    auto it = t.index.find(ch);
    if (it != t.index.end()) {
      st.word.push_back(it->second);
    } else {
      st.word.push_back(kNoToken);
      st.pieces.push_back(ch);
    }
    i += len;
  }
  bpe_merge(t.merges, st.word, st.scratch);
  size_t unknown = 0;
  for (int32_t id : st.word) {
    if (id != kNoToken) {
      out.push_back(id);
      continue;
    }
    const std::string_view ch = st.pieces[unknown++];
    bool all_bytes = spec.byte_fallback;
    for (char c : ch) all_bytes = all_bytes && t.byte_tokens[(uint8_t)c] != kNoToken;
    if (all_bytes) {
      for (char c : ch) out.push_back(t.byte_tokens[(uint8_t)c]);
    } else if (spec.unk >= 0) {
      out.push_back(spec.unk);
    }
  }
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && spec_->add_bos && spec_->bos >= 0) out.push_back(spec_->bos);
  EncodeState st;
  bool after_special = true;  // SentencePiece prefixes each fragment that starts the text or
                              // follows a special token with "▁"
  auto flush_text = [&](std::string_view frag) {
    if (frag.empty()) return;
    if (t_->byte_level) {
      encode_byte_level(*t_, *spec_, frag, st, out);
    } else {
      encode_spm(*t_, *spec_, frag, after_special && spec_->add_space_prefix, st, out);
    }
    after_special = false;
  };

  size_t frag_start = 0;
  for (size_t i = 0; t_->has_specials && i < text.size();) {
    const auto& bucket = t_->specials[(uint8_t)text[i]];
    const SpecialEntry* hit = nullptr;
    for (const SpecialEntry& e : bucket) {
      if ((parse_special || e.always) && text.compare(i, e.text.size(), e.text) == 0) {
        hit = &e;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    flush_text(text.substr(frag_start, i - frag_start));
    out.push_back(hit->id);
    after_special = true;
    i += hit->text.size();
    frag_start = i;
  }
  flush_text(text.substr(frag_start));

  if (add_special && spec_->add_eos && spec_->eos >= 0) out.push_back(spec_->eos);
  return out;
}

}  // namespace frugal
