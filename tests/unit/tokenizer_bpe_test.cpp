// Byte-level BPE (SmolLM2) against goldens made by Hugging Face `tokenizers`
// (tests/reference/make_tokenizer_goldens.py): tricky strings, special tokens, the whole of
// WikiText-2's test split, and decode round trips. Both loaders (GGUF and tokenizer.json).
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace frugal {
namespace {

using nlohmann::json;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json load_golden(const std::string& name) {
  return json::parse(read_all(test::source_dir() + "/tests/golden/" + name));
}

// FNV-1a 64 over the ids as little-endian int32 (same as the golden script).
uint64_t fnv1a64(const int32_t* ids, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t x = (uint32_t)ids[i];
    for (int b = 0; b < 4; ++b) h = (h ^ ((x >> (8 * b)) & 0xFF)) * 0x100000001b3ull;
  }
  return h;
}

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

class SmolLM2Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (test::file_exists(test::default_model_path())) {
      auto f = gguf::GgufFile::open(test::default_model_path());
      ASSERT_TRUE(f.ok()) << f.status().to_string();
      auto t = Tokenizer::from_gguf(*f);
      ASSERT_TRUE(t.ok()) << t.status().to_string();
      from_gguf_ = new Tokenizer(std::move(t).value());
    }
    auto j = Tokenizer::from_tokenizer_json(test::source_dir() + "/tests/golden/smollm2_tokenizer.json");
    ASSERT_TRUE(j.ok()) << j.status().to_string();
    from_json_ = new Tokenizer(std::move(j).value());
  }
  static void TearDownTestSuite() {
    delete from_gguf_;
    delete from_json_;
    from_gguf_ = from_json_ = nullptr;
  }
  // The tokenizers to check: both loaders when the model file is present.
  static std::vector<std::pair<const char*, const Tokenizer*>> all() {
    std::vector<std::pair<const char*, const Tokenizer*>> v{{"tokenizer.json", from_json_}};
    if (from_gguf_) v.emplace_back("gguf", from_gguf_);
    return v;
  }
  static Tokenizer* from_gguf_;
  static Tokenizer* from_json_;
};
Tokenizer* SmolLM2Tokenizer::from_gguf_ = nullptr;
Tokenizer* SmolLM2Tokenizer::from_json_ = nullptr;

TEST_F(SmolLM2Tokenizer, Metadata) {
  for (auto [name, tok] : all()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(tok->vocab_size(), 49152);
    EXPECT_EQ(tok->model(), "gpt2");
    EXPECT_EQ(tok->token_id("<|im_start|>"), 1);
    EXPECT_EQ(tok->token_id("<|im_end|>"), 2);
    EXPECT_EQ(tok->token_id("Ġt"), tok->token_id("Ġt"));
    EXPECT_FALSE(tok->token_id("no such token ☃").has_value());
    EXPECT_TRUE(tok->is_control(1));
    EXPECT_FALSE(tok->is_control(100));
    EXPECT_TRUE(tok->is_end_of_generation(2));  // <|im_end|>
    EXPECT_TRUE(tok->is_end_of_generation(0));  // <|endoftext|>
    EXPECT_FALSE(tok->is_end_of_generation(1));
    EXPECT_FALSE(tok->is_end_of_generation(500));
    EXPECT_FALSE(tok->is_end_of_generation(-1));
    EXPECT_EQ(tok->token_to_piece(*tok->token_id("Ġhello")), " hello");
    EXPECT_EQ(tok->token_to_piece(1), "<|im_start|>");
    EXPECT_EQ(tok->token_to_piece(-5), "");
  }
  if (from_gguf_) {
    EXPECT_EQ(from_gguf_->pre(), "smollm");
    EXPECT_EQ(from_gguf_->bos(), 1);
    EXPECT_EQ(from_gguf_->eos(), 2);
    EXPECT_FALSE(from_gguf_->add_bos());
    EXPECT_NE(from_gguf_->chat_template().find("<|im_start|>"), std::string::npos);
  }
}

TEST_F(SmolLM2Tokenizer, TrickyStringsMatchHuggingFace) {
  const json g = load_golden("tokenizer_smollm2_cases.json");
  ASSERT_GE(g["cases"].size(), 40u);
  for (auto [name, tok] : all()) {
    for (const json& c : g["cases"]) {
      const std::string text = c["text"];
      SCOPED_TRACE(std::string(name) + ": '" + text + "'");
      const std::vector<int32_t> want = c["ids"], want_plain = c["ids_no_special"];
      EXPECT_EQ(tok->encode(text, /*add_special=*/true, /*parse_special=*/true), want);
      EXPECT_EQ(tok->encode(text, false, /*parse_special=*/false), want_plain);
      auto back = tok->decode(want_plain);
      ASSERT_TRUE(back.ok());
      EXPECT_EQ(*back, text);
      back = tok->decode(want);
      ASSERT_TRUE(back.ok());
      EXPECT_EQ(*back, text);
    }
  }
}

TEST_F(SmolLM2Tokenizer, SpecialTokensNeverSplitAndOnlyParsedOnRequest) {
  for (auto [name, tok] : all()) {
    SCOPED_TRACE(name);
    const std::vector<int32_t> ids = tok->encode("a<|im_start|><|im_end|>b<|endoftext|>", false, true);
    ASSERT_EQ(ids.size(), 5u);
    EXPECT_EQ(ids[1], 1);
    EXPECT_EQ(ids[2], 2);
    EXPECT_EQ(ids[4], 0);
    // Not parsed: no control token appears at all, and the text still round-trips.
    const std::string text = "<|im_start|>user\n<|im_end|><|endoftext|>";
    const std::vector<int32_t> plain = tok->encode(text, false, false);
    for (int32_t id : plain) EXPECT_FALSE(tok->is_control(id)) << id;
    EXPECT_EQ(*tok->decode(plain), text);
    // Skipping special tokens when decoding.
    EXPECT_EQ(*tok->decode(ids, /*skip_special=*/true), "ab");
  }
}

TEST_F(SmolLM2Tokenizer, DecodeRejectsOutOfRangeIds) {
  for (auto [name, tok] : all()) {
    const int32_t bad[] = {100, 49152};
    auto r = tok->decode(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
    const int32_t neg[] = {-1};
    EXPECT_FALSE(tok->decode(neg).ok());
    EXPECT_EQ(*tok->decode({}), "");
  }
}

TEST_F(SmolLM2Tokenizer, WikitextMatchesHuggingFaceAndRoundTrips) {
  const std::string path = test::shared_data("wikitext-2-raw-test.txt");
  if (!test::file_exists(path)) GTEST_SKIP() << "missing " << path;
  const std::string text = read_all(path);
  const json g = load_golden("tokenizer_smollm2_wikitext.json");
  // The GGUF tokenizer when present (the one the engine uses), else the tokenizer.json one.
  const Tokenizer* tok = from_gguf_ ? from_gguf_ : from_json_;

  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok->encode(text, false, false);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ wikitext ] %zu bytes -> %zu tokens in %.3f s: %.0f tokens/s, %.1f MB/s\n",
              text.size(), ids.size(), secs, ids.size() / secs, text.size() / secs / 1e6);
  // The rate is printed, not asserted: speed is for benchmarks (it failed once under load).

  const std::vector<int32_t> first = g["first_ids"];
  ASSERT_GE(ids.size(), first.size());
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + first.size()), first);
  // Locate the first differing chunk before comparing the whole.
  const size_t chunk = g["chunk"];
  const std::vector<std::string> chunks = g["chunk_fnv1a64"];
  for (size_t c = 0; c < chunks.size() && c * chunk < ids.size(); ++c) {
    const size_t n = std::min(chunk, ids.size() - c * chunk);
    ASSERT_EQ(hex64(fnv1a64(ids.data() + c * chunk, n)), chunks[c]) << "first mismatch in chunk " << c;
  }
  EXPECT_EQ(ids.size(), g["count"].get<size_t>());
  EXPECT_EQ(hex64(fnv1a64(ids.data(), ids.size())), g["fnv1a64"].get<std::string>());

  auto back = tok->decode(ids);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == text) << "decode(encode(wikitext)) differs from the file";
}

TEST_F(SmolLM2Tokenizer, ByteRoundTripOfArbitraryBytes) {
  // Every byte the vocabulary has a token for survives a round trip, also inside invalid UTF-8;
  // the bytes it lacks (0xC0, 0xC1, 0xF5..0xFF and a few control bytes in SmolLM2) are dropped,
  // as Hugging Face and llama.cpp drop them.
  for (auto [name, tok] : all()) {
    SCOPED_TRACE(name);
    std::string text, kept;
    int missing = 0;
    for (int b = 0; b < 256; ++b) {
      const std::string one(1, (char)b);
      const bool has = !tok->encode(one, false, false).empty();
      missing += !has;
      text += one + "x\xE2\x82 \xF0\x9F\x99" + one + one + " ";
      kept += (has ? one : "") + "x\xE2\x82 \xF0\x9F\x99" + (has ? one + one : "") + " ";
    }
    EXPECT_EQ(missing, 21);
    EXPECT_TRUE(tok->encode("\xFF", false, false).empty());
    auto back = tok->decode(tok->encode(text, false, false));
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(*back == kept);
  }
}

// Random strings built from tricky fragments and raw bytes: encode never loses a byte the
// vocabulary has, with or without special-token parsing.
TEST_F(SmolLM2Tokenizer, RandomStringsRoundTrip) {
  const char* frags[] = {" ",  "  ", "\n", "\r\n", "\t", "a",  "Z",  "'s", "'", "1", "42", ".", "é",
                         "日", "🙂", "\xCC\x81", "<|im_start|>", "<|im_end|>", "<|im", "|>", "<", "\xFF",
                         "\xE2\x82", "\xC0"};
  for (auto [name, tok] : all()) {
    SCOPED_TRACE(name);
    std::array<bool, 256> has{};
    for (int b = 0; b < 256; ++b) has[b] = !tok->encode(std::string(1, (char)b), false, false).empty();
    uint64_t state = 12345;
    auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
    for (int iter = 0; iter < 300; ++iter) {
      std::string text, kept;
      const int n = (int)(next() % 24);
      for (int k = 0; k < n; ++k) {
        const uint64_t r = next();
        text += (r % 5 == 0) ? std::string(1, (char)(next() & 0xFF)) : frags[r % std::size(frags)];
      }
      for (char c : text)
        if (has[(uint8_t)c]) kept.push_back(c);
      SCOPED_TRACE(::testing::PrintToString(text));
      EXPECT_EQ(*tok->decode(tok->encode(text, false, false)), kept);
      // With special parsing, special tokens come back as themselves; their bytes are all present.
      EXPECT_EQ(*tok->decode(tok->encode(text, false, true)), kept);
    }
  }
}

TEST_F(SmolLM2Tokenizer, GgufAndJsonAgreeOnAMixedText) {
  if (!from_gguf_) GTEST_SKIP() << "no model file";
  const std::string text =
      "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat's 2+2? 🤔<|im_end|>\n";
  EXPECT_EQ(from_gguf_->encode(text, true, true), from_json_->encode(text, true, true));
}

}  // namespace
}  // namespace frugal
