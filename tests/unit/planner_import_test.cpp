// Model descriptions from config.json text, GGUF files and explicit dims; errors name the field.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "formats/gguf.h"
#include "planner/model_import.h"
#include "planner/presets.h"
#include "test_util.h"

namespace frugal::planner {
namespace {

// Dims as in the models' published config.json files.
const char* kLlama31_8B = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
  "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
  "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "tie_word_embeddings": false})";
// The original RW-era Falcon-7B config (n_head / n_layer keys, multi_query).
const char* kFalcon7B = R"({"model_type": "RefinedWebModel", "hidden_size": 4544, "n_head": 71,
  "n_layer": 32, "multi_query": true, "parallel_attn": true, "bias": false, "vocab_size": 65024})";
const char* kFalcon40B = R"({"model_type": "falcon", "hidden_size": 8192, "num_attention_heads": 128,
  "num_hidden_layers": 60, "num_kv_heads": 8, "new_decoder_architecture": true,
  "parallel_attn": true, "bias": false, "vocab_size": 65024})";
const char* kStarCoder = R"({"model_type": "gpt_bigcode", "n_embd": 6144, "n_head": 48,
  "n_layer": 40, "n_inner": 24576, "n_positions": 8192, "multi_query": true, "vocab_size": 49152})";
const char* kQwen25_7B = R"({"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
  "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
  "vocab_size": 152064, "tie_word_embeddings": false, "max_position_embeddings": 131072})";
const char* kGemma2_9B = R"({"model_type": "gemma2", "hidden_size": 3584, "intermediate_size": 14336,
  "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256,
  "vocab_size": 256000, "max_position_embeddings": 8192, "sliding_window": 4096})";
const char* kMixtral = R"({"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
  "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
  "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2})";

int64_t params_of(const char* json) {
  Result<ModelSpec> m = spec_from_hf_json_text(json, "config.json");
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? count_params(*m).total : -1;
}

TEST(PlannerImport, HfConfigsReproducePresets) {
  EXPECT_EQ(params_of(kLlama31_8B), count_params(find_preset("llama-3.1-8b").value()).total);
  EXPECT_EQ(params_of(kFalcon7B), 6921720704);
  EXPECT_EQ(params_of(kFalcon40B), count_params(find_preset("falcon-40b").value()).total);
  EXPECT_EQ(params_of(kStarCoder), 15517456384);
  EXPECT_EQ(params_of(kQwen25_7B), 7615616512);
  EXPECT_EQ(params_of(kGemma2_9B), 9241705984);
  EXPECT_EQ(params_of(kMixtral), 46702792704);
  const ModelSpec f7 = spec_from_hf_json_text(kFalcon7B, "c").value();
  EXPECT_EQ(f7.n_kv_heads, 1);
  EXPECT_EQ(f7.norms_per_layer, 1);
  EXPECT_EQ(f7.ffn, FfnKind::kPlain);
  EXPECT_EQ(spec_from_hf_json_text(kFalcon40B, "c")->n_kv_heads, 8);
  EXPECT_EQ(spec_from_hf_json_text(kStarCoder, "c")->learned_positions, 8192);
}

TEST(PlannerImport, MissingOrMistypedFieldIsNamed) {
  Result<ModelSpec> r = spec_from_hf_json_text(R"({"model_type": "llama", "intermediate_size": 11008,
      "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000})", "cfg.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("'hidden_size'"), std::string::npos) << r.status().message();
  r = spec_from_hf_json_text(R"({"hidden_size": "4096", "intermediate_size": 11008,
      "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000})", "cfg.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("hidden_size"), std::string::npos);
  r = spec_from_hf_json_text(R"({"model_type": "falcon", "hidden_size": 8192, "num_attention_heads": 128,
      "num_hidden_layers": 60, "new_decoder_architecture": true, "vocab_size": 65024})", "cfg.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("num_kv_heads"), std::string::npos) << r.status().message();
  r = spec_from_hf_json_text("{not json", "cfg.json");
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  r = spec_from_hf_json_text("[1, 2]", "cfg.json");
  EXPECT_FALSE(r.ok());
}

TEST(PlannerImport, ImpossibleDimsAreErrors) {
  // Zero heads; heads not dividing the hidden size; KV heads not dividing heads.
  EXPECT_FALSE(spec_from_hf_json_text(R"({"hidden_size": 4096, "intermediate_size": 1, "num_hidden_layers": 1,
      "num_attention_heads": 0, "vocab_size": 10})", "c").ok());
  Result<ModelSpec> r = spec_from_hf_json_text(R"({"hidden_size": 4096, "intermediate_size": 1,
      "num_hidden_layers": 1, "num_attention_heads": 3, "vocab_size": 10})", "c");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("do not divide hidden size"), std::string::npos);
  EXPECT_FALSE(spec_from_hf_json_text(R"({"hidden_size": 4096, "intermediate_size": 1, "num_hidden_layers": 1,
      "num_attention_heads": 32, "num_key_value_heads": 5, "vocab_size": 10})", "c").ok());
  // An unknown model_type is read as Llama-like and says so.
  r = spec_from_hf_json_text(R"({"model_type": "newthing", "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10})", "c");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->family.find("Llama-like"), std::string::npos);
}

TEST(PlannerImport, Dims) {
  Result<ModelSpec> m = spec_from_dims("layers=32,hidden=4096,heads=32,kv_heads=8,ffn=14336,vocab=128256");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(count_params(*m).total, 8030261248);
  m = spec_from_dims("layers=32,hidden=4096,heads=32,ffn=14336");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'vocab'"), std::string::npos);
  EXPECT_FALSE(spec_from_dims("layers=x,hidden=4096,heads=32,ffn=1,vocab=1").ok());
  EXPECT_FALSE(spec_from_dims("layers=1,hidden=4096,heads=32,ffn=1,vocab=1,bogus=3").ok());
  EXPECT_FALSE(spec_from_dims("layers=1,hidden=4096,heads=0,ffn=1,vocab=1").ok());
  EXPECT_FALSE(spec_from_dims("layers").ok());
  // Absurd sizes are rejected before any arithmetic could overflow.
  m = spec_from_dims("layers=100000,hidden=4096,heads=32,ffn=1,vocab=1");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("implausibly large"), std::string::npos);
  EXPECT_FALSE(spec_from_dims("layers=1,hidden=4096,heads=32,ffn=1,vocab=99999999999").ok());
  EXPECT_FALSE(spec_from_dims("layers=99999999999,hidden=4096,heads=32,ffn=1,vocab=1").ok());
  EXPECT_FALSE(spec_from_dims("layers=-1,hidden=4096,heads=32,ffn=1,vocab=1").ok());
}

TEST(PlannerImport, DefaultModelGguf) {
  const std::string path = test::default_model_path();
  if (!test::file_exists(path)) GTEST_SKIP() << "default model not fetched";
  auto g = gguf::GgufFile::open(path);
  ASSERT_TRUE(g.ok()) << g.status().message();
  FileWeights fw;
  Result<ModelSpec> m = spec_from_gguf(*g, &fw);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ModelSpec p = find_preset("smollm2-135m").value();
  EXPECT_EQ(m->n_layers, p.n_layers);
  EXPECT_EQ(m->hidden, p.hidden);
  EXPECT_EQ(m->ffn_dim, p.ffn_dim);
  EXPECT_EQ(m->n_heads, p.n_heads);
  EXPECT_EQ(m->n_kv_heads, p.n_kv_heads);
  EXPECT_EQ(m->vocab_size, p.vocab_size);
  EXPECT_TRUE(m->tied_embeddings);
  EXPECT_EQ(count_params(*m).total, count_params(p).total);
  // Per-role bytes add up to the tensors' bytes; every weight is counted once.
  uint64_t bytes = 0, elems = 0;
  for (const gguf::TensorInfo& t : g->tensors()) bytes += t.nbytes;
  for (uint64_t e : fw.elems) elems += e;
  EXPECT_EQ(fw.total_bytes(), bytes);
  EXPECT_EQ((int64_t)elems, count_params(p).total);
  // Embedding Q8_0: 49152 x 576 / 32 blocks x 34 B.
  EXPECT_EQ(fw.bytes[(int)TensorRole::kEmbedding], 49152u * 576u / 32u * 34u);
  EXPECT_EQ(fw.bytes[(int)TensorRole::kLmHead], 0u);
  auto in = resolve_model(path);
  ASSERT_TRUE(in.ok());
  EXPECT_TRUE(in->file.has_value());
}

TEST(PlannerImport, GgufMissingKeyIsNamed) {
  const std::string path = (std::filesystem::temp_directory_path() / "planner_missing_key.gguf").string();
  gguf::GgufWriter w;
  w.set("general.architecture", gguf::Value::string("llama"));
  w.set("llama.block_count", gguf::Value::u32(2));
  w.set("llama.embedding_length", gguf::Value::u32(64));
  w.set("llama.attention.head_count", gguf::Value::u32(4));
  std::vector<float> emb(16 * 64, 0.5f);
  ASSERT_TRUE(w.add_tensor("token_embd.weight", DType::F32, {16, 64}, emb.data(), emb.size() * 4).ok());
  ASSERT_TRUE(w.write(path).ok());
  auto g = gguf::GgufFile::open(path);
  ASSERT_TRUE(g.ok()) << g.status().message();
  Result<ModelSpec> m = spec_from_gguf(*g, nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("llama.feed_forward_length"), std::string::npos) << m.status().message();
  // With the key: vocabulary from token_embd's rows, tied (no output.weight).
  gguf::GgufWriter w2 = w;
  w2.set("llama.feed_forward_length", gguf::Value::u32(128));
  ASSERT_TRUE(w2.write(path).ok());
  g = gguf::GgufFile::open(path);
  ASSERT_TRUE(g.ok());
  FileWeights fw;
  m = spec_from_gguf(*g, &fw);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->vocab_size, 16);
  EXPECT_TRUE(m->tied_embeddings);
  EXPECT_EQ(fw.bytes[(int)TensorRole::kEmbedding], 16u * 64u * 4u);
  std::remove(path.c_str());
}

TEST(PlannerImport, ResolveModelNames) {
  EXPECT_EQ(resolve_model("llama-2-7b")->source, "preset");
  Result<ModelInput> r = resolve_model("/no/such/model.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  r = resolve_model("gemma2-9");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("gemma-2-9b"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace frugal::planner
