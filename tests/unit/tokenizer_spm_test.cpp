// SentencePiece-style BPE ("llama" model) on a small hand-built vocabulary, against Hugging Face
// `tokenizers` running a byte-fallback BPE built from the same vocabulary
// (tests/reference/make_tokenizer_goldens.py → tests/golden/tokenizer_spm_cases.json). Our
// tokenizer merges by score; the reference by a merge list ordered by score.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace frugal {
namespace {

using nlohmann::json;

json load_spm_golden() {
  std::ifstream in(test::source_dir() + "/tests/golden/tokenizer_spm_cases.json");
  std::ostringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

TokenizerSpec spm_spec(const json& g) {
  TokenizerSpec s;
  s.model = "llama";
  s.tokens = g["tokens"].get<std::vector<std::string>>();
  s.scores = g["scores"].get<std::vector<float>>();
  s.token_types = g["token_types"].get<std::vector<int32_t>>();
  s.bos = g["bos"];
  s.eos = g["eos"];
  s.unk = g["unk"];
  s.add_bos = true;
  s.add_space_prefix = true;
  return s;
}

void check_cases(const Tokenizer& tok, const json& g) {
  ASSERT_GE(g["cases"].size(), 15u);
  for (const json& c : g["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE("'" + text + "'");
    const std::vector<int32_t> want = c["ids"], want_plain = c["ids_no_special"];
    EXPECT_EQ(tok.encode(text, false, /*parse_special=*/true), want);
    EXPECT_EQ(tok.encode(text, false, /*parse_special=*/false), want_plain);
    auto d = tok.decode(want_plain, /*skip_special=*/true);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, c["decoded"].get<std::string>());
    d = tok.decode(want, /*skip_special=*/false);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, c["decoded_special"].get<std::string>());
  }
}

TEST(SpmTokenizer, ScoreMergesMatchHuggingFace) {
  const json g = load_spm_golden();
  auto tok = Tokenizer::create(spm_spec(g));
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  check_cases(*tok, g);
}

TEST(SpmTokenizer, TokenizerJsonWithMergeListMatchesHuggingFace) {
  const json g = load_spm_golden();
  auto tok = Tokenizer::from_tokenizer_json(test::source_dir() + "/tests/golden/tokenizer_spm.json");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(tok->model(), "llama");
  EXPECT_EQ(tok->unk(), 0);
  EXPECT_EQ(tok->token_type(3 + 0x41), TokenType::kByte);
  check_cases(*tok, g);
}

TEST(SpmTokenizer, BosPiecesAndByteFallback) {
  const json g = load_spm_golden();
  auto tok = Tokenizer::create(spm_spec(g));
  ASSERT_TRUE(tok.ok());
  const std::vector<int32_t> ids = tok->encode("hello", /*add_special=*/true, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(*tok->decode(ids, /*skip_special=*/true), "hello");
  EXPECT_TRUE(tok->encode("", false, false).empty());
  EXPECT_EQ(tok->encode("", true, false), std::vector<int32_t>{1});
  EXPECT_EQ(tok->token_to_piece(*tok->token_id("▁hello")), " hello");
  EXPECT_EQ(tok->token_to_piece(*tok->token_id("<0x41>")), "A");
  EXPECT_EQ(tok->token_to_piece(1), "<s>");
  EXPECT_TRUE(tok->is_end_of_generation(2));
  EXPECT_TRUE(tok->is_control(0));  // <unk>
  // A character without a token and without byte tokens falls back to <unk>.
  TokenizerSpec s = spm_spec(g);
  for (int b = 0; b < 256; ++b) s.tokens[3 + b] = "[byte " + std::to_string(b) + "]";
  auto nobytes = Tokenizer::create(std::move(s));
  ASSERT_TRUE(nobytes.ok());
  const std::vector<int32_t> z = nobytes->encode("z日本", false, false);
  const std::vector<int32_t> want = {*tok->token_id("▁"), 0, *tok->token_id("日"), 0};
  EXPECT_EQ(z, want);
}

// SentencePiece with byte fallback loses nothing: decode(encode(x)) == x for any bytes except a
// literal "▁" (which encodes like a space).
TEST(SpmTokenizer, RandomBytesRoundTrip) {
  const json g = load_spm_golden();
  auto tok = Tokenizer::create(spm_spec(g));
  ASSERT_TRUE(tok.ok());
  const char* frags[] = {" ", "  ", "hello", "world", "the", "é", "日本", "\n", "<s>", "</s>", "z"};
  uint64_t state = 99;
  auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  for (int iter = 0; iter < 300; ++iter) {
    std::string text;
    const int n = (int)(next() % 16);
    for (int k = 0; k < n; ++k) {
      const uint64_t r = next();
      text += (r % 4 == 0) ? std::string(1, (char)(next() & 0xFF)) : frags[r % std::size(frags)];
    }
    if (text.find("\xE2\x96\x81") != std::string::npos) continue;
    SCOPED_TRACE(::testing::PrintToString(text));
    const std::vector<int32_t> ids = tok->encode(text, true, false);
    for (int32_t id : ids) EXPECT_NE(id, tok->unk());
    EXPECT_EQ(*tok->decode(ids, /*skip_special=*/true), text);
  }
}

TEST(SpmTokenizer, NoSpacePrefix) {
  const json g = load_spm_golden();
  TokenizerSpec s = spm_spec(g);
  s.add_space_prefix = false;
  auto tok = Tokenizer::create(std::move(s));
  ASSERT_TRUE(tok.ok());
  const std::vector<int32_t> ids = tok->encode("hello world", false, false);
  const std::vector<int32_t> want = {*tok->token_id("he"), *tok->token_id("llo"),
                                     *tok->token_id("▁world")};
  EXPECT_EQ(ids, want);
  EXPECT_EQ(*tok->decode(ids), "hello world");
}

}  // namespace
}  // namespace frugal
