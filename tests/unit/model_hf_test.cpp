// The Hugging Face path (config.json + safetensors + tokenizer.json, rotate-half RoPE, HF tensor
// names and Q/K row order) must compute the same model as the GGUF path. The HF directory is
// built from a 2-layer copy of the default model: weights dequantized, Q/K rows un-permuted back
// to HF order (the inverse of the GGUF converter's permutation).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/half.h"
#include "formats/safetensors.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/model.h"
#include "quant/ggml_blocks.h"
#include "test_models.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

// GGUF row 2i+j of a head holds HF row j*(hd/2)+i (j in {0,1}, i in [0, hd/2)).
std::vector<float> unpermute_rows(const std::vector<float>& w, int64_t n_heads, int64_t hd,
                                  int64_t cols) {
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < hd / 2; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const float* src = &w[(h * hd + 2 * i + j) * cols];
        std::copy(src, src + cols, &out[(h * hd + j * (hd / 2) + i) * cols]);
      }
  return out;
}

std::vector<float> dequant(const TensorView& t) {
  std::vector<float> out(t.numel());
  for (int64_t r = 0; r < t.rows(); ++r) dequantize_row(t.dtype, t.row(r), &out[r * t.cols()], t.cols());
  return out;
}

class HfModel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
    dir_ = fs::temp_directory_path() / ("frugal_hf_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "hf");
    gguf_path_ = (dir_ / "small.gguf").string();
    test::TruncateOptions o;
    o.n_layers = 2;
    test::write_truncated_gguf(test::default_model_path(), gguf_path_, o);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes the HF directory with matrices stored as `mat_dtype` (F32 or BF16).
  void write_hf(const Model& g, DType mat_dtype) {
    const ModelConfig& c = g.config;
    std::vector<std::vector<uint8_t>> bufs;  // keep data alive until written
    std::vector<TensorView> views;
    auto add = [&](const std::string& name, std::vector<float> v, std::vector<int64_t> shape,
                   DType dt) {
      std::vector<uint8_t> bytes;
      if (dt == DType::F32) {
        bytes.resize(v.size() * 4);
        std::memcpy(bytes.data(), v.data(), bytes.size());
      } else {
        bytes.resize(v.size() * 2);
        for (size_t i = 0; i < v.size(); ++i) {
          const uint16_t b = f32_to_bf16(v[i]);
          std::memcpy(&bytes[2 * i], &b, 2);
        }
      }
      bufs.push_back(std::move(bytes));
      TensorView t;
      t.name = name;
      t.dtype = dt;
      t.shape = std::move(shape);
      t.data = bufs.back().data();
      t.nbytes = bufs.back().size();
      views.push_back(t);
    };
    const int64_t hd = c.head_dim();
    add("model.embed_tokens.weight", dequant(g.weights.token_embd), {c.vocab_size, c.dim}, mat_dtype);
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerWeights& L = g.weights.layers[l];
      const std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", dequant(L.attn_norm), {c.dim}, DType::F32);
      add(p + "self_attn.q_proj.weight", unpermute_rows(dequant(L.wq), c.n_heads, hd, c.dim),
          L.wq.shape, mat_dtype);
      add(p + "self_attn.k_proj.weight", unpermute_rows(dequant(L.wk), c.n_kv_heads, hd, c.dim),
          L.wk.shape, mat_dtype);
      add(p + "self_attn.v_proj.weight", dequant(L.wv), L.wv.shape, mat_dtype);
      add(p + "self_attn.o_proj.weight", dequant(L.wo), L.wo.shape, mat_dtype);
      add(p + "post_attention_layernorm.weight", dequant(L.ffn_norm), {c.dim}, DType::F32);
      add(p + "mlp.gate_proj.weight", dequant(L.w_gate), L.w_gate.shape, mat_dtype);
      add(p + "mlp.up_proj.weight", dequant(L.w_up), L.w_up.shape, mat_dtype);
      add(p + "mlp.down_proj.weight", dequant(L.w_down), L.w_down.shape, mat_dtype);
    }
    add("model.norm.weight", dequant(g.weights.output_norm), {c.dim}, DType::F32);
    const fs::path hf = dir_ / "hf";
    ASSERT_TRUE(safetensors::write_safetensors((hf / "model.safetensors").string(), views).ok());
    nlohmann::json cfg = {
        {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
        {"hidden_size", c.dim}, {"intermediate_size", c.hidden_dim},
        {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
        {"num_key_value_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
        {"max_position_embeddings", c.max_seq_len}, {"rope_theta", c.rope_base},
        {"rms_norm_eps", c.norm_eps}, {"tie_word_embeddings", true}, {"hidden_act", "silu"}};
    std::ofstream(hf / "config.json") << cfg.dump(2);
    fs::copy_file(test::source_dir() + "/tests/golden/smollm2_tokenizer.json", hf / "tokenizer.json",
                  fs::copy_options::overwrite_existing);
  }

  std::vector<float> last_logits(const Model& m, const std::vector<int32_t>& prompt) {
    ThreadPool pool(2);
    auto kv = KvCache::create(m.config, (int64_t)prompt.size());
    EXPECT_TRUE(kv.ok());
    LlamaRunner r(m, pool);
    std::vector<float> logits(m.config.vocab_size);
    EXPECT_TRUE(r.forward(prompt, 0, *kv, logits).ok());
    return logits;
  }

  fs::path dir_;
  std::string gguf_path_;
};

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return std::sqrt(num / den);
}

TEST_F(HfModel, SafetensorsF32MatchesGguf) {
  Result<Model> g = load_model(gguf_path_);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  write_hf(*g, DType::F32);
  Result<Model> h = load_model((dir_ / "hf").string());
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->format, ModelFormat::kSafetensors);
  EXPECT_EQ(h->config.rope_layout, RopeLayout::kHalf);
  ASSERT_TRUE(h->tokenizer.has_value());
  const std::string text = "The quick brown fox jumps over the lazy dog 12345 times.";
  const std::vector<int32_t> ids = g->tokenizer->encode(text, true, false);
  EXPECT_EQ(h->tokenizer->encode(text, true, false), ids);  // tokenizer.json == GGUF tokenizer
  const double err = rel_l2(last_logits(*h, ids), last_logits(*g, ids));
  std::printf("[ hf       ] F32 safetensors vs GGUF: rel L2 %.2e\n", err);
  EXPECT_LT(err, 1e-5);
}

TEST_F(HfModel, SafetensorsBf16CloseToGguf) {
  Result<Model> g = load_model(gguf_path_);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  write_hf(*g, DType::BF16);
  Result<Model> h = load_model((dir_ / "hf").string());
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  const std::vector<int32_t> ids = g->tokenizer->encode("Once upon a time, there was", true, false);
  const std::vector<float> a = last_logits(*h, ids), b = last_logits(*g, ids);
  const double err = rel_l2(a, b);
  std::printf("[ hf       ] BF16 safetensors vs GGUF: rel L2 %.2e\n", err);
  // bf16 keeps 8 significant bits: per-weight relative rounding <= 2^-9.
  EXPECT_LT(err, 2e-2);
  EXPECT_EQ(std::max_element(a.begin(), a.end()) - a.begin(),
            std::max_element(b.begin(), b.end()) - b.begin());
}

TEST_F(HfModel, MissingConfigJsonIsAClearError) {
  Result<Model> h = load_model((dir_ / "hf").string());
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("config.json"), std::string::npos) << h.status().message();
}

}  // namespace
}  // namespace frugal
