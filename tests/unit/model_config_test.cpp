// ModelConfig from GGUF metadata (the default model and synthetic files) and from Hugging Face
// config.json files (Llama-3.1-8B and Mistral-7B values as published on the Hub).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "formats/gguf.h"
#include "model/model_config_io.h"
#include "test_util.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::temp_directory_path() /
           ("frugal_cfg_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write_text(const std::string& name, const std::string& text) {
    const std::string p = path(name);
    std::ofstream(p) << text;
    return p;
  }
  fs::path dir_;
};

TEST(ConfigFromGguf, DefaultModel) {
  const std::string p = test::default_model_path();
  if (!test::file_exists(p)) GTEST_SKIP() << "default model not present: " << p;
  Result<gguf::GgufFile> f = gguf::GgufFile::open(p);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  Result<ModelConfig> c = config_from_gguf(*f);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->arch, "llama");
  EXPECT_EQ(c->n_layers, 30);
  EXPECT_EQ(c->dim, 576);
  EXPECT_EQ(c->hidden_dim, 1536);
  EXPECT_EQ(c->n_heads, 9);
  EXPECT_EQ(c->n_kv_heads, 3);
  EXPECT_EQ(c->head_dim(), 64);
  EXPECT_EQ(c->vocab_size, 49152);
  EXPECT_EQ(c->max_seq_len, 8192);
  EXPECT_EQ(c->rope_base, 100000.0f);
  EXPECT_EQ(c->norm_eps, 1e-5f);
  EXPECT_TRUE(c->tied_embeddings);
  EXPECT_EQ(c->rope_layout, RopeLayout::kAdjacent);
  EXPECT_FALSE(c->name.empty());
}

// A synthetic llama GGUF; `drop` removes one key, `extra` adds/overrides keys.
struct SynthGguf {
  std::string drop;
  std::vector<std::pair<std::string, gguf::Value>> extra;
  bool with_output = false;
  bool with_vocab_key = true;

  Status write(const std::string& path) const {
    using gguf::Value;
    gguf::GgufWriter w;
    std::vector<std::pair<std::string, Value>> kv = {
        {"general.architecture", Value::string("llama")},
        {"general.name", Value::string("synth")},
        {"llama.block_count", Value::u32(2)},
        {"llama.embedding_length", Value::u32(64)},
        {"llama.feed_forward_length", Value::u32(128)},
        {"llama.attention.head_count", Value::u32(4)},
        {"llama.attention.head_count_kv", Value::u32(2)},
        {"llama.context_length", Value::u32(256)},
        {"llama.attention.layer_norm_rms_epsilon", Value::f32(1e-6f)},
        {"llama.rope.freq_base", Value::f32(500000.0f)},
        {"tokenizer.ggml.tokens", Value::string_array(std::vector<std::string>(100, "t"))},
    };
    if (with_vocab_key) kv.push_back({"llama.vocab_size", Value::u32(100)});
    for (auto& [k, v] : kv)
      if (k != drop) w.set(k, v);
    for (auto& [k, v] : extra) w.set(k, v);
    static const std::vector<float> embd(100 * 64, 0.5f);
    FRUGAL_RETURN_IF_ERROR(w.add_tensor("token_embd.weight", DType::F32, {100, 64}, embd.data(),
                                        embd.size() * 4));
    if (with_output)
      FRUGAL_RETURN_IF_ERROR(w.add_tensor("output.weight", DType::F32, {100, 64}, embd.data(),
                                          embd.size() * 4));
    return w.write(path);
  }
};

TEST_F(ConfigFiles, GgufSynthetic) {
  SynthGguf s;
  s.with_output = true;
  ASSERT_TRUE(s.write(path("a.gguf")).ok());
  Result<gguf::GgufFile> f = gguf::GgufFile::open(path("a.gguf"));
  ASSERT_TRUE(f.ok());
  Result<ModelConfig> c = config_from_gguf(*f);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->name, "synth");
  EXPECT_EQ(c->n_layers, 2);
  EXPECT_EQ(c->n_kv_heads, 2);
  EXPECT_EQ(c->vocab_size, 100);
  EXPECT_EQ(c->rope_base, 500000.0f);
  EXPECT_EQ(c->norm_eps, 1e-6f);
  EXPECT_FALSE(c->tied_embeddings);

  // Optional keys: vocab from the token list, kv heads = heads, rope base 10000.
  SynthGguf d;
  d.with_vocab_key = false;
  d.drop = "llama.attention.head_count_kv";
  ASSERT_TRUE(d.write(path("b.gguf")).ok());
  f = gguf::GgufFile::open(path("b.gguf"));
  ASSERT_TRUE(f.ok());
  c = config_from_gguf(*f);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->vocab_size, 100);
  EXPECT_EQ(c->n_kv_heads, 4);
  EXPECT_TRUE(c->tied_embeddings);
  SynthGguf r;
  r.drop = "llama.rope.freq_base";
  ASSERT_TRUE(r.write(path("c.gguf")).ok());
  EXPECT_EQ(config_from_gguf(*gguf::GgufFile::open(path("c.gguf")))->rope_base, 10000.0f);
}

TEST_F(ConfigFiles, GgufMissingRequiredKeys) {
  for (const char* key : {"general.architecture", "llama.block_count", "llama.embedding_length",
                          "llama.feed_forward_length", "llama.attention.head_count",
                          "llama.context_length", "llama.attention.layer_norm_rms_epsilon"}) {
    SCOPED_TRACE(key);
    SynthGguf s;
    s.drop = key;
    const std::string p = path(std::string(key) + ".gguf");
    ASSERT_TRUE(s.write(p).ok());
    Result<gguf::GgufFile> f = gguf::GgufFile::open(p);
    ASSERT_TRUE(f.ok());
    Result<ModelConfig> c = config_from_gguf(*f);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), StatusCode::kNotFound) << c.status().to_string();
    EXPECT_NE(c.status().message().find(std::string("'") + key + "'"), std::string::npos)
        << c.status().message();
    EXPECT_NE(c.status().message().find(p), std::string::npos);
  }
  SynthGguf v;  // neither llama.vocab_size nor a token list
  v.with_vocab_key = false;
  v.drop = "tokenizer.ggml.tokens";
  ASSERT_TRUE(v.write(path("v.gguf")).ok());
  Result<ModelConfig> c = config_from_gguf(*gguf::GgufFile::open(path("v.gguf")));
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("llama.vocab_size"), std::string::npos);
}

TEST_F(ConfigFiles, GgufInconsistentOrUnsupported) {
  auto status_for = [&](SynthGguf s, const std::string& name) {
    const std::string p = path(name);
    EXPECT_TRUE(s.write(p).ok());
    Result<gguf::GgufFile> f = gguf::GgufFile::open(p);
    EXPECT_TRUE(f.ok());
    return config_from_gguf(*f).status();
  };
  SynthGguf arch;
  arch.extra = {{"general.architecture", gguf::Value::string("gemma")}};
  Status st = status_for(arch, "arch.gguf");
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("gemma"), std::string::npos);
  SynthGguf heads;
  heads.extra = {{"llama.attention.head_count", gguf::Value::u32(5)}};  // 5 does not divide 64
  EXPECT_EQ(status_for(heads, "heads.gguf").code(), StatusCode::kCorrupt);
  SynthGguf rot;
  rot.extra = {{"llama.rope.dimension_count", gguf::Value::u32(8)}};
  EXPECT_EQ(status_for(rot, "rot.gguf").code(), StatusCode::kUnsupported);
  SynthGguf vocab;
  vocab.extra = {{"llama.vocab_size", gguf::Value::u32(99)}};  // token_embd has 100 rows
  st = status_for(vocab, "vocab.gguf");
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("token_embd.weight"), std::string::npos);
  SynthGguf type;
  type.extra = {{"llama.block_count", gguf::Value::string("2")}};
  st = status_for(type, "type.gguf");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("llama.block_count"), std::string::npos);
}

// meta-llama/Llama-3.1-8B config.json, with its "rope_scaling" entry removed (frugal refuses
// RoPE scaling until it implements it; see HfRopeScalingIsRefused).
const char* kLlama31_8B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256
})";

TEST_F(ConfigFiles, HfLlama31_8B) {
  const std::string p = write_text("config.json", kLlama31_8B);
  Result<ModelConfig> c = config_from_hf_json(p);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->dim, 4096);
  EXPECT_EQ(c->hidden_dim, 14336);
  EXPECT_EQ(c->n_layers, 32);
  EXPECT_EQ(c->n_heads, 32);
  EXPECT_EQ(c->n_kv_heads, 8);
  EXPECT_EQ(c->head_dim(), 128);
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->max_seq_len, 131072);
  EXPECT_EQ(c->rope_base, 500000.0f);
  EXPECT_EQ(c->norm_eps, 1e-5f);
  EXPECT_FALSE(c->tied_embeddings);
  EXPECT_EQ(c->rope_layout, RopeLayout::kHalf);
  EXPECT_EQ(c->kv_bytes_per_token(2), 131072);  // REFERENCES.md planner fact
  // A directory means <dir>/config.json.
  EXPECT_TRUE(config_from_hf_json(dir_.string()).ok());
}

TEST_F(ConfigFiles, HfRopeScalingIsRefused) {
  nlohmann::json j = nlohmann::json::parse(kLlama31_8B);
  j["rope_scaling"] = {{"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}, {"rope_type", "llama3"}};
  Result<ModelConfig> c = config_from_hf_json(write_text("scaled.json", j.dump()));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(c.status().message().find("rope_scaling"), std::string::npos);
  j["rope_scaling"] = nullptr;  // null means none
  EXPECT_TRUE(config_from_hf_json(write_text("unscaled.json", j.dump())).ok());
}

TEST_F(ConfigFiles, HfDefaultsAndMistral) {
  nlohmann::json j = nlohmann::json::parse(kLlama31_8B);
  j.erase("num_key_value_heads");
  j.erase("rope_theta");
  j.erase("tie_word_embeddings");
  j["num_key_value_heads"] = nullptr;  // null counts as absent
  Result<ModelConfig> c = config_from_hf_json(write_text("d.json", j.dump()));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->n_kv_heads, 32);
  EXPECT_EQ(c->rope_base, 10000.0f);
  EXPECT_FALSE(c->tied_embeddings);

  // mistralai/Mistral-7B-v0.1: sliding window 4096 caps the usable context.
  const char* mistral = R"({"architectures": ["MistralForCausalLM"], "hidden_act": "silu",
    "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768,
    "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
    "sliding_window": 4096, "tie_word_embeddings": false, "vocab_size": 32000})";
  c = config_from_hf_json(write_text("m.json", mistral));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->max_seq_len, 4096);
  EXPECT_EQ(c->vocab_size, 32000);
}

TEST_F(ConfigFiles, HfMissingAndBadFields) {
  for (const char* field : {"hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "vocab_size", "max_position_embeddings",
                            "rms_norm_eps"}) {
    SCOPED_TRACE(field);
    nlohmann::json j = nlohmann::json::parse(kLlama31_8B);
    j.erase(field);
    const std::string p = write_text(std::string(field) + ".json", j.dump());
    Result<ModelConfig> c = config_from_hf_json(p);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
    EXPECT_NE(c.status().message().find(std::string("'") + field + "'"), std::string::npos)
        << c.status().message();
    EXPECT_NE(c.status().message().find(p), std::string::npos);
  }
  Result<ModelConfig> c = config_from_hf_json(write_text("bad.json", "{\"hidden_size\": 4096,"));
  EXPECT_EQ(c.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(c.status().message().find("parse error"), std::string::npos) << c.status().message();

  auto with = [&](const char* field, nlohmann::json v) {
    nlohmann::json j = nlohmann::json::parse(kLlama31_8B);
    j[field] = std::move(v);
    return config_from_hf_json(write_text(std::string("w_") + field + ".json", j.dump())).status();
  };
  Status st = with("hidden_size", "4096");
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("hidden_size"), std::string::npos);
  EXPECT_EQ(with("num_attention_heads", 5000000000LL).code(), StatusCode::kCorrupt);
  EXPECT_EQ(with("num_key_value_heads", 5).code(), StatusCode::kCorrupt);  // 5 ∤ 32
  EXPECT_EQ(with("architectures", {"GPTNeoXForCausalLM"}).code(), StatusCode::kUnsupported);
  EXPECT_EQ(with("hidden_act", "gelu").code(), StatusCode::kUnsupported);
  EXPECT_EQ(with("attention_bias", true).code(), StatusCode::kUnsupported);
  EXPECT_EQ(with("head_dim", 256).code(), StatusCode::kUnsupported);
  EXPECT_TRUE(with("head_dim", 128).ok());
  EXPECT_EQ(config_from_hf_json(path("missing.json")).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace frugal
