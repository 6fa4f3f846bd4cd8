// Tokenizer construction (validation and tables), decoding and token queries.
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_tables.h"
#include "tokenizer/utf8.h"

namespace frugal {

using namespace tokenizer_internal;

namespace {

constexpr std::string_view kEogNames[] = {"<|im_end|>",  "<|endoftext|>", "<|eot_id|>",
                                          "<|eom_id|>",  "<|end|>",       "<end_of_turn>"};

TokenType type_of(const TokenizerSpec& s, size_t i) {
  return s.token_types.empty() ? TokenType::kNormal : (TokenType)s.token_types[i];
}

// "<0x41>" → 0x41.
std::optional<uint8_t> parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return std::nullopt;
  int v = 0;
  for (char c : t.substr(3, 2)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10
          : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v * 16 + d;
  }
  return (uint8_t)v;
}

Status validate(const TokenizerSpec& s) {
  if (s.model != "gpt2" && s.model != "llama")
    return Unsupported(fmt::format("tokenizer model '{}' is not supported (supported: gpt2, llama)",
                                   s.model));
  const size_t n = s.tokens.size();
  if (n == 0) return InvalidArgument("tokenizer has no tokens");
  if (n > (size_t)INT32_MAX) return InvalidArgument("tokenizer has too many tokens");
  if (!s.scores.empty() && s.scores.size() != n)
    return Corrupt(fmt::format("tokenizer has {} scores for {} tokens", s.scores.size(), n));
  if (!s.token_types.empty() && s.token_types.size() != n)
    return Corrupt(fmt::format("tokenizer has {} token types for {} tokens", s.token_types.size(), n));
  for (size_t i = 0; i < s.token_types.size(); ++i)
    if (s.token_types[i] < 0 || s.token_types[i] > 6)
      return Corrupt(fmt::format("token {} has invalid type {}", i, s.token_types[i]));
  const std::pair<const char*, int32_t> ids[] = {{"bos", s.bos}, {"eos", s.eos}, {"unk", s.unk},
                                                 {"pad", s.pad}, {"eot", s.eot}, {"eom", s.eom}};
  for (auto [name, id] : ids)
    if (id < -1 || id >= (int64_t)n)
      return Corrupt(fmt::format("{} token id {} is outside the vocabulary of {}", name, id, n));
  if (s.model == "llama" && s.merges.empty() && s.scores.empty())
    return InvalidArgument("SentencePiece tokenizer needs token scores or a merge list");
  return Status::Ok();
}

// Merge list "left right" → ranks in list order.
Status add_listed_merges(const TokenizerSpec& s, const TokenIndex& index, MergeTable& merges) {
  std::string joined;
  for (size_t i = 0; i < s.merges.size(); ++i) {
    const std::string& m = s.merges[i];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos || sp + 1 >= m.size())
      return Corrupt(fmt::format("merge {} ('{}') is not of the form 'left right'", i, m));
    const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    joined.assign(left);
    joined.append(right);
    const auto l = index.find(left), r = index.find(right), j = index.find(std::string_view(joined));
    if (l == index.end() || r == index.end() || j == index.end())
      return Corrupt(fmt::format("merge {} ('{}') names a token not in the vocabulary ('{}')", i, m,
                                 l == index.end() ? left : r == index.end() ? right : joined));
    merges.add(l->second, r->second, (int32_t)i, j->second);
  }
  return Status::Ok();
}

// SentencePiece BPE: every way of splitting a piece into two vocabulary pieces is a merge, ranked
// by the piece's score (higher first; equal scores share a rank so the leftmost pair wins).
void add_score_merges(const TokenizerSpec& s, const TokenIndex& index, MergeTable& merges) {
  const size_t n = s.tokens.size();
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return s.scores[a] > s.scores[b]; });
  std::vector<int32_t> rank(n);
  for (size_t k = 0; k < n; ++k)
    rank[order[k]] = (k > 0 && s.scores[order[k]] == s.scores[order[k - 1]]) ? rank[order[k - 1]]
                                                                             : (int32_t)k;
  for (size_t id = 0; id < n; ++id) {
    const TokenType ty = type_of(s, id);
    if (ty != TokenType::kNormal && ty != TokenType::kUserDefined) continue;
    const std::string_view t = s.tokens[id];
    if (index.find(t)->second != (int32_t)id) continue;  // a shadowed duplicate
    for (size_t k = utf8_char_length(t, 0); k < t.size(); k += utf8_char_length(t, k)) {
      const auto l = index.find(t.substr(0, k)), r = index.find(t.substr(k));
      if (l != index.end() && r != index.end()) merges.add(l->second, r->second, rank[id], (int32_t)id);
    }
  }
}

}  // namespace

Result<Tokenizer> Tokenizer::create(TokenizerSpec spec) {
  FRUGAL_RETURN_IF_ERROR(validate(spec));
  auto t = std::make_shared<TokenizerTables>();
  const size_t n = spec.tokens.size();
  t->byte_level = spec.model == "gpt2";
  t->index.reserve(n);
  for (size_t i = 0; i < n; ++i) t->index[spec.tokens[i]] = (int32_t)i;

  if (t->byte_level) {
    std::vector<std::string> patterns = spec.pre_patterns;
    if (patterns.empty()) {
      FRUGAL_ASSIGN_OR_RETURN(patterns, patterns_for_pre(spec.pre));
    }
    FRUGAL_ASSIGN_OR_RETURN(t->pre, PreTokenizer::create(patterns));
  }
  if (!spec.merges.empty()) {
    FRUGAL_RETURN_IF_ERROR(add_listed_merges(spec, t->index, t->merges));
  } else if (!t->byte_level) {
    add_score_merges(spec, t->index, t->merges);
  }

  for (int b = 0; b < 256; ++b) {
    const std::string key = t->byte_level ? byte_level_encode(std::string(1, (char)b))
                                          : fmt::format("<0x{:02X}>", b);
    auto it = t->index.find(key);
    t->byte_tokens[b] = it == t->index.end() ? kNoToken : it->second;
  }

  t->pieces.resize(n);
  t->is_control.assign(n, 0);
  t->is_eog.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = spec.tokens[i];
    const TokenType ty = type_of(spec, i);
    const bool control = ty == TokenType::kControl || ty == TokenType::kUnknown;
    t->is_control[i] = control;
    if (control || ty == TokenType::kUserDefined) {
      t->pieces[i] = text;
      if (!text.empty()) {
        t->specials[(uint8_t)text[0]].push_back({text, (int32_t)i, !control});
        t->has_specials = true;
      }
      if (control && std::find(std::begin(kEogNames), std::end(kEogNames), text) != std::end(kEogNames))
        t->is_eog[i] = 1;
    } else if (t->byte_level) {
      t->pieces[i] = byte_level_decode(text);
    } else if (auto b = ty == TokenType::kByte ? parse_byte_token(text) : std::nullopt) {
      t->pieces[i] = std::string(1, (char)*b);
    } else {
      std::string& p = t->pieces[i];
      for (size_t k = 0; k < text.size();) {  // "▁" (U+2581) → " "
        if (text.compare(k, 3, "\xE2\x96\x81") == 0) {
          p.push_back(' ');
          k += 3;
        } else {
          p.push_back(text[k++]);
        }
      }
    }
  }
  for (auto& bucket : t->specials)
    std::stable_sort(bucket.begin(), bucket.end(),
                     [](const SpecialEntry& a, const SpecialEntry& b) { return a.text.size() > b.text.size(); });
  for (int32_t id : {spec.eos, spec.eot, spec.eom})
    if (id >= 0) t->is_eog[id] = 1;

  Tokenizer tok;
  tok.spec_ = std::make_shared<const TokenizerSpec>(std::move(spec));
  // The special entries view strings owned by the spec: re-point them at the moved strings.
  for (auto& bucket : t->specials)
    for (SpecialEntry& e : bucket) e.text = tok.spec_->tokens[e.id];
  tok.t_ = std::move(t);
  return tok;
}

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool strip_space = !t_->byte_level && spec_->add_space_prefix;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      return OutOfRange(fmt::format("token id {} is outside the vocabulary of {}", id, vocab_size()));
    if (skip_special && t_->is_control[id]) continue;
    std::string_view p = t_->pieces[id];
    if (strip_space && !t_->is_control[id] && !p.empty() && p[0] == ' ') p.remove_prefix(1);
    strip_space = false;
    out.append(p);
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return t_->pieces[id];
}

std::string_view Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return spec_->tokens[id];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view text) const {
  auto it = t_->index.find(text);
  if (it == t_->index.end()) return std::nullopt;
  return it->second;
}

TokenType Tokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return TokenType::kUndefined;
  return type_of(*spec_, id);
}

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < vocab_size() && t_->is_control[id];
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return id >= 0 && id < vocab_size() && t_->is_eog[id];
}

}  // namespace frugal
