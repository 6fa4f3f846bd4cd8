// Tokenizer odds and ends: UTF-8 streaming, the byte-level alphabet, the ChatML chat template,
// and bad input (each must give an error value, never a crash).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>

#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace frugal {
namespace {

using nlohmann::json;

TEST(Utf8StreamBuffer, HoldsBackIncompleteCharacters) {
  Utf8StreamBuffer b;
  const std::string text = "a\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x99\x82!";  // "aé 日 🙂!"
  // Feed one byte at a time: nothing is ever emitted in the middle of a character.
  std::string out;
  for (char c : text) {
    const std::string got = b.push(std::string_view(&c, 1));
    for (size_t i = 0; i < got.size(); i += utf8_char_length(got, i))
      EXPECT_GT(utf8_char_length(got, i) + ((uint8_t)got[i] < 0x80), 1u) << "broken char emitted";
    out += got;
  }
  out += b.flush();
  EXPECT_EQ(out, text);
  EXPECT_TRUE(b.empty());

  EXPECT_EQ(b.push("x\xF0\x9F"), "x");
  EXPECT_EQ(b.push("\x99"), "");
  EXPECT_EQ(b.push("\x82y"), "\xF0\x9F\x99\x82y");
  // Bytes that cannot start or continue a character pass through instead of being held.
  EXPECT_EQ(b.push("\xFF"), "\xFF");
  EXPECT_EQ(b.push("\x80z"), "\x80z");
  EXPECT_EQ(b.push("\xE6\x28"), "\xE6\x28");  // lead byte followed by a non-continuation
  EXPECT_EQ(b.push("\xED\xA0"), "\xED\xA0");  // would be a surrogate: never valid
  EXPECT_EQ(b.push("\xE2"), "");
  EXPECT_EQ(b.flush(), "\xE2");  // an unfinished character at the end is flushed as is
}

TEST(Utf8, DecodeAndLengths) {
  size_t len = 0;
  EXPECT_EQ(decode_utf8("\xE2\x96\x81", 0, &len), 0x2581u);
  EXPECT_EQ(len, 3u);
  EXPECT_EQ(decode_utf8("\xC0\xAF", 0, &len), 0xFFFDu);  // overlong
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(utf8_char_length("\xF0\x9F\x99", 0), 1u);  // truncated
  std::string s;
  append_utf8(s, 0x1F642);
  EXPECT_EQ(s, "\xF0\x9F\x99\x82");
}

TEST(ByteLevel, AlphabetIsABijection) {
  using namespace tokenizer_internal;
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const char32_t cp = byte_to_codepoint((uint8_t)b);
    EXPECT_TRUE(seen.insert(cp).second);
    EXPECT_EQ(codepoint_to_byte(cp), (uint8_t)b);
  }
  EXPECT_EQ(byte_to_codepoint(' '), 0x120u);   // "Ġ"
  EXPECT_EQ(byte_to_codepoint('\n'), 0x10Au);  // "Ċ"
  EXPECT_EQ(byte_to_codepoint('A'), (char32_t)'A');
  EXPECT_FALSE(codepoint_to_byte(0x2581).has_value());
  EXPECT_EQ(byte_level_encode(" hi\n"), "\xC4\xA0hi\xC4\x8A");
  EXPECT_EQ(byte_level_decode("\xC4\xA0hi\xC4\x8A"), " hi\n");
}

constexpr const char* kSmolLM2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' "
    "}}{% endif %}";

TEST(ChatTemplate, SmolLM2ChatML) {
  std::string jinja = kSmolLM2Template;
  if (test::file_exists(test::default_model_path())) {  // the template as the model ships it
    auto f = gguf::GgufFile::open(test::default_model_path());
    ASSERT_TRUE(f.ok());
    auto t = f->get_string("tokenizer.chat_template");
    ASSERT_TRUE(t.ok());
    jinja = *t;
  }
  auto tmpl = ChatTemplate::parse(jinja);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  EXPECT_EQ(tmpl->default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");

  const std::vector<ChatMessage> two = {{"user", "What is 2+2?"}, {"assistant", "4."}};
  EXPECT_EQ(tmpl->apply(two, /*add_generation_prompt=*/false),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4."
            "<|im_end|>\n");
  const std::vector<ChatMessage> sys = {{"system", "Be brief."}, {"user", "Hi"}};
  EXPECT_EQ(tmpl->apply(sys, /*add_generation_prompt=*/true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template_chatml({}, true, ""), "<|im_start|>assistant\n");
}

TEST(ChatTemplate, OtherTemplatesAreUnsupported) {
  auto llama2 = ChatTemplate::parse("{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}");
  ASSERT_FALSE(llama2.ok());
  EXPECT_EQ(llama2.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(ChatTemplate::parse("").status().code(), StatusCode::kNotFound);
  // ChatML without a literal default system prompt inserts none.
  auto plain = ChatTemplate::parse(
      "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endfor %}");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->default_system, "");
  EXPECT_EQ(plain->apply({{"user", "x"}}, false), "<|im_start|>user\nx<|im_end|>\n");
}

TokenizerSpec tiny_spec() {
  TokenizerSpec s;
  s.model = "gpt2";
  s.pre = "gpt-2";
  for (int b = 0; b < 256; ++b) s.tokens.push_back(tokenizer_internal::byte_level_encode(std::string(1, (char)b)));
  s.tokens.push_back("he");
  s.tokens.push_back("hel");
  s.tokens.push_back("<|end|>");
  s.token_types.assign(s.tokens.size(), 1);
  s.token_types.back() = 3;
  s.merges = {"h e", "he l"};
  return s;
}

TEST(TokenizerCreate, TinySpecWorks) {
  auto tok = Tokenizer::create(tiny_spec());
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(tok->encode("hello", false, false), (std::vector<int32_t>{257, 'l', 'o'}));
  EXPECT_EQ(tok->encode("hel<|end|>", false, true), (std::vector<int32_t>{257, 258}));
  EXPECT_TRUE(tok->is_end_of_generation(258));
}

TEST(TokenizerCreate, BadSpecsGiveErrors) {
  auto code = [](TokenizerSpec s) { return Tokenizer::create(std::move(s)).status().code(); };
  TokenizerSpec s = tiny_spec();
  s.tokens.clear();
  s.token_types.clear();
  s.merges.clear();
  EXPECT_EQ(code(s), StatusCode::kInvalidArgument);  // no tokens

  s = tiny_spec();
  s.merges.push_back("h nope");
  auto r = Tokenizer::create(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("nope"), std::string::npos);

  s = tiny_spec();
  s.merges.push_back("hl");  // no separator
  EXPECT_EQ(code(s), StatusCode::kCorrupt);
  s = tiny_spec();
  s.merges.push_back("l o");  // "lo" is not a token
  EXPECT_EQ(code(s), StatusCode::kCorrupt);

  s = tiny_spec();
  s.pre = "mystery-pre";
  r = Tokenizer::create(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("mystery-pre"), std::string::npos);

  s = tiny_spec();
  s.pre_patterns = {"[unclosed"};
  EXPECT_EQ(code(s), StatusCode::kInvalidArgument);
  s = tiny_spec();
  s.model = "wordpiece";
  EXPECT_EQ(code(s), StatusCode::kUnsupported);
  s = tiny_spec();
  s.token_types.pop_back();
  EXPECT_EQ(code(s), StatusCode::kCorrupt);
  s = tiny_spec();
  s.token_types[3] = 9;
  EXPECT_EQ(code(s), StatusCode::kCorrupt);
  s = tiny_spec();
  s.scores = {1.0f};
  EXPECT_EQ(code(s), StatusCode::kCorrupt);
  s = tiny_spec();
  s.bos = (int32_t)s.tokens.size();
  EXPECT_EQ(code(s), StatusCode::kCorrupt);
  s = tiny_spec();
  s.eos = -2;
  EXPECT_EQ(code(s), StatusCode::kCorrupt);
  s = tiny_spec();
  s.model = "llama";
  s.merges.clear();
  EXPECT_EQ(code(s), StatusCode::kInvalidArgument);  // neither scores nor merges
}

class TokenizerJsonErrors : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }
  Result<Tokenizer> load_text(const std::string& content) {
    std::ofstream(path_, std::ios::binary) << content;
    return Tokenizer::from_tokenizer_json(path_);
  }
  Result<Tokenizer> load(const json& j) { return load_text(j.dump()); }
  // A valid tiny byte-level tokenizer.json: a..c plus space, merges in both forms.
  static json valid() {
    return json{{"model",
                 {{"type", "BPE"},
                  {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"\xC4\xA0", 3}, {"ab", 4}, {"abc", 5}}},
                  {"merges", json::array({"a b", json::array({"ab", "c"})})}}},
                {"added_tokens", json::array({{{"id", 6}, {"content", "<eos>"}, {"special", true}}})},
                {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                {"normalizer", nullptr}};
  }
  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("frugal_tok_" + std::to_string(::getpid()) + "_bad.json")).string();
};

TEST_F(TokenizerJsonErrors, ValidTinyFileLoads) {
  auto tok = load(valid());
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(tok->encode("abc ab<eos>", false, true), (std::vector<int32_t>{5, 3, 4, 6}));
  EXPECT_EQ(tok->encode("abc ab<eos>", false, false).back(), 4);  // "<eos>" bytes are dropped: not in vocab
}

TEST_F(TokenizerJsonErrors, BadFilesGiveErrors) {
  EXPECT_EQ(Tokenizer::from_tokenizer_json("/nonexistent/tokenizer.json").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(load_text("{ not json").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(load_text("[1, 2]").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(load(json{{"nomodel", 1}}).status().code(), StatusCode::kCorrupt);

  json j = valid();
  j["model"]["type"] = "Unigram";
  EXPECT_EQ(load(j).status().code(), StatusCode::kUnsupported);
  j = valid();
  j["model"]["vocab"] = json::object();
  j["added_tokens"] = json::array();
  EXPECT_EQ(load(j).status().code(), StatusCode::kInvalidArgument);  // empty vocabulary
  j = valid();
  j["model"]["vocab"]["zz"] = 40;  // ids with a gap
  EXPECT_EQ(load(j).status().code(), StatusCode::kCorrupt);
  j = valid();
  j["model"]["vocab"]["a"] = "zero";  // wrong JSON type
  EXPECT_EQ(load(j).status().code(), StatusCode::kCorrupt);
  j = valid();
  j["model"]["merges"].push_back(17);
  EXPECT_EQ(load(j).status().code(), StatusCode::kCorrupt);
  j = valid();
  j["model"]["merges"].push_back("b c");  // "bc" is not a token
  EXPECT_EQ(load(j).status().code(), StatusCode::kCorrupt);
  j = valid();
  j["normalizer"] = {{"type", "NFC"}};
  EXPECT_EQ(load(j).status().code(), StatusCode::kUnsupported);
  j = valid();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_EQ(load(j).status().code(), StatusCode::kUnsupported);
  j = valid();
  j["added_tokens"][0]["rstrip"] = true;
  EXPECT_EQ(load(j).status().code(), StatusCode::kUnsupported);
  // Pre-tokenizer Sequences nested 10000 deep (written as text: building it as a json value
  // would recurse in the test itself).
  j = valid();
  j.erase("pre_tokenizer");
  std::string text = j.dump();
  text.pop_back();  // the closing brace
  text += ",\"pre_tokenizer\":";
  for (int d = 0; d < 10000; ++d) text += "{\"type\":\"Sequence\",\"pretokenizers\":[";
  text += "{\"type\":\"ByteLevel\"}";
  for (int d = 0; d < 10000; ++d) text += "]}";
  text += "}";
  EXPECT_EQ(load_text(text).status().code(), StatusCode::kCorrupt);
  j = valid();
  j["pre_tokenizer"] = nullptr;  // neither byte-level nor SentencePiece-style
  EXPECT_EQ(load(j).status().code(), StatusCode::kUnsupported);
}

TEST(Tokenizer, ConcurrentEncodeIsSafe) {
  auto tok = Tokenizer::create(tiny_spec());
  ASSERT_TRUE(tok.ok());
  const std::string text = "hello hello hel<|end|> world 123";
  const std::vector<int32_t> want = tok->encode(text, false, true);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) bad += tok->encode(text, false, true) != want;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace frugal
