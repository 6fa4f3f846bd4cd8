// Tokenizer loaders and pre-tokenizers against Hugging Face goldens
// (tests/reference/make_tokenizer_goldens.py): regex splits for the GPT-2, Llama 3 and digit
// patterns; a small Llama-3-style tokenizer.json ("a b" merges, Split + ByteLevel, ignore_merges,
// BOS template); and the same vocabularies written to GGUF and read back with from_gguf.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace frugal {
namespace {

using nlohmann::json;
using tokenizer_internal::PreTokenizer;

json load_golden(const std::string& name) {
  std::ifstream in(test::source_dir() + "/tests/golden/" + name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("frugal_tok_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::vector<std::string> split(const PreTokenizer& p, const std::string& text) {
  std::vector<std::string_view> views;
  p.split(text, views);
  return {views.begin(), views.end()};
}

TEST(PreTokenizer, PatternsMatchHuggingFaceSplit) {
  const json g = load_golden("tokenizer_pretokenizer_cases.json");
  // Our built-in patterns are the ones the goldens were made with.
  EXPECT_EQ(g["patterns"]["gpt2"].get<std::string>(), tokenizer_internal::kGpt2Pattern);
  EXPECT_EQ(g["patterns"]["llama3"].get<std::string>(), tokenizer_internal::kLlama3Pattern);
  auto gpt2 = PreTokenizer::create({tokenizer_internal::kGpt2Pattern});
  auto llama3 = PreTokenizer::create(*tokenizer_internal::patterns_for_pre("llama-bpe"));
  auto digits = PreTokenizer::create({tokenizer_internal::kDigitsPattern});
  ASSERT_TRUE(gpt2.ok() && llama3.ok() && digits.ok());
  for (const json& c : g["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE("'" + text + "'");
    EXPECT_EQ(split(*gpt2, text), c["gpt2"].get<std::vector<std::string>>());
    EXPECT_EQ(split(*llama3, text), c["llama3"].get<std::vector<std::string>>());
    EXPECT_EQ(split(*digits, text), c["digits"].get<std::vector<std::string>>());
  }
}

TEST(PreTokenizer, KeepsEveryByteAndRejectsBadPatterns) {
  auto p = PreTokenizer::create(*tokenizer_internal::patterns_for_pre("smollm"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->num_stages(), 2u);
  const std::string text = "ab12 \xFF\xFE x\xE2\x82 9\xC3";  // invalid UTF-8 mixed in
  std::string joined;
  for (const std::string& piece : split(*p, text)) {
    EXPECT_FALSE(piece.empty());
    joined += piece;
  }
  EXPECT_EQ(joined, text);
  EXPECT_TRUE(split(*p, "").empty());
  auto bad = PreTokenizer::create({"(unclosed"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto unknown = tokenizer_internal::patterns_for_pre("no-such-pre");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(unknown.status().message().find("no-such-pre"), std::string::npos);
}

void check_tiny_llama3(const Tokenizer& tok) {
  const json g = load_golden("tokenizer_tiny_llama3_cases.json");
  for (const json& c : g["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE("'" + text + "'");
    const std::vector<int32_t> ids = c["ids"], plain = c["ids_no_special"];
    EXPECT_EQ(tok.encode(text, /*add_special=*/true, /*parse_special=*/true), ids);
    EXPECT_EQ(tok.encode(text, false, false), plain);
    EXPECT_EQ(*tok.decode(plain), text);
  }
}

TEST(TokenizerJson, TinyLlama3StyleMatchesHuggingFace) {
  auto tok = Tokenizer::from_tokenizer_json(test::source_dir() + "/tests/golden/tokenizer_tiny_llama3.json");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(tok->model(), "gpt2");
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->bos(), 0);
  EXPECT_TRUE(tok->spec().ignore_merges);
  EXPECT_TRUE(tok->is_end_of_generation(*tok->token_id("<|eot_id|>")));
  check_tiny_llama3(*tok);
}

// The tiny vocabulary as GGUF metadata (pre "llama-bpe" selects the Llama 3 pattern and
// ignore_merges, as llama.cpp does).
TEST(TokenizerGguf, TinyLlama3StyleFromGguf) {
  const json j = load_golden("tokenizer_tiny_llama3.json");
  std::vector<std::string> tokens(j["model"]["vocab"].size());
  for (const auto& [text, id] : j["model"]["vocab"].items()) tokens.at(id.get<size_t>()) = text;
  std::vector<int32_t> types(tokens.size(), 1);
  for (const json& a : j["added_tokens"]) types.at(a["id"].get<size_t>()) = 3;
  gguf::GgufWriter w;
  w.set("general.architecture", gguf::Value::string("llama"));
  w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::Value::string("llama-bpe"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  w.set("tokenizer.ggml.merges", gguf::Value::string_array(j["model"]["merges"].get<std::vector<std::string>>()));
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(0));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(1));
  w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
  const std::string path = temp_path("tiny_llama3.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto f = gguf::GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto tok = Tokenizer::from_gguf(*f);
  std::filesystem::remove(path);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_TRUE(tok->spec().ignore_merges);
  check_tiny_llama3(*tok);
}

// The SentencePiece golden vocabulary as GGUF (model "llama", scores, byte tokens).
TEST(TokenizerGguf, SpmFromGguf) {
  const json g = load_golden("tokenizer_spm_cases.json");
  gguf::GgufWriter w;
  w.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(g["tokens"].get<std::vector<std::string>>()));
  w.set("tokenizer.ggml.scores", gguf::Value::f32_array(g["scores"].get<std::vector<float>>()));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(g["token_types"].get<std::vector<int32_t>>()));
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(2));
  w.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(0));
  const std::string path = temp_path("spm.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto f = gguf::GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto tok = Tokenizer::from_gguf(*f);
  std::filesystem::remove(path);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_TRUE(tok->add_bos());  // llama.cpp's default for SentencePiece when the key is absent
  EXPECT_TRUE(tok->spec().add_space_prefix);
  for (const json& c : g["cases"]) {
    SCOPED_TRACE(c["text"].get<std::string>());
    EXPECT_EQ(tok->encode(c["text"].get<std::string>(), false, true), c["ids"].get<std::vector<int32_t>>());
  }
  EXPECT_EQ(tok->encode("hello", true, false).front(), 1);
}

TEST(TokenizerGguf, MissingOrUnsupportedMetadata) {
  gguf::GgufWriter w;
  w.set("general.architecture", gguf::Value::string("llama"));
  const std::string path = temp_path("notok.gguf");
  ASSERT_TRUE(w.write(path).ok());
  {
    auto f = gguf::GgufFile::open(path);
    ASSERT_TRUE(f.ok());
    auto tok = Tokenizer::from_gguf(*f);
    ASSERT_FALSE(tok.ok());
    EXPECT_EQ(tok.status().code(), StatusCode::kNotFound);
  }
  w.set("tokenizer.ggml.model", gguf::Value::string("bert"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b"}));
  ASSERT_TRUE(w.write(path).ok());
  {
    auto f = gguf::GgufFile::open(path);
    ASSERT_TRUE(f.ok());
    auto tok = Tokenizer::from_gguf(*f);
    ASSERT_FALSE(tok.ok());
    EXPECT_EQ(tok.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(tok.status().message().find("bert"), std::string::npos);
  }
  w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  w.set("tokenizer.ggml.merges", gguf::Value::string_array({"a b"}));
  w.set("tokenizer.ggml.pre", gguf::Value::string("mystery"));
  ASSERT_TRUE(w.write(path).ok());
  {
    auto f = gguf::GgufFile::open(path);
    ASSERT_TRUE(f.ok());
    auto tok = Tokenizer::from_gguf(*f);
    ASSERT_FALSE(tok.ok());  // "ab" is not a token, and the pre-tokenizer is unknown
  }
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b", "ab"}));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(7));
  w.set("tokenizer.ggml.pre", gguf::Value::string("gpt-2"));
  ASSERT_TRUE(w.write(path).ok());
  {
    auto f = gguf::GgufFile::open(path);
    ASSERT_TRUE(f.ok());
    auto tok = Tokenizer::from_gguf(*f);
    ASSERT_FALSE(tok.ok());
    EXPECT_EQ(tok.status().code(), StatusCode::kCorrupt);  // eos 7 outside a 3-token vocabulary
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace frugal
