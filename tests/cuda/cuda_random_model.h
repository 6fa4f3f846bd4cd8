// A random Llama for the CUDA tests: F32 weights drawn uniformly and rounded to values exact in
// bf16 (so the GPU's bf16 upload changes nothing), norms in [0.5, 1.5], matrices scaled by
// 1.7/sqrt(cols); the output matrix is the embedding when c.tied_embeddings.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "model/model.h"

namespace frugal::cuda::test {

// Awkward sizes for the whole-model GPU tests: vocab 1003, dim 192, hidden 328, 2 layers,
// GQA 3 q / 1 KV head (head_dim 64), rotate-half RoPE, untied output, 64 positions.
inline ModelConfig small_random_config() {
  ModelConfig c;
  c.name = "random";
  c.vocab_size = 1003;
  c.dim = 192;
  c.hidden_dim = 328;
  c.n_layers = 2;
  c.n_heads = 3;
  c.n_kv_heads = 1;
  c.max_seq_len = 64;
  c.rope_layout = RopeLayout::kHalf;
  return c;
}

inline Model random_model(const ModelConfig& c, uint32_t seed) {
  Model m;
  m.config = c;
  std::mt19937 rng(seed);
  auto tensor = [&](const std::string& name, std::vector<int64_t> shape, float lo, float hi) {
    auto buf = std::make_shared<std::vector<float>>();
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::uniform_real_distribution<float> dist(lo, hi);
    buf->resize((size_t)n);
    for (float& x : *buf) x = bf16_to_f32(f32_to_bf16(dist(rng)));
    TensorView v;
    v.name = name;
    v.dtype = DType::F32;
    v.shape = std::move(shape);
    v.data = buf->data();
    v.nbytes = (size_t)n * 4;
    m.storage.push_back(buf);
    return v;
  };
  const int64_t hd = c.head_dim(), q = c.n_heads * hd, kv = c.kv_dim();
  auto mat = [&](const std::string& name, int64_t rows, int64_t cols) {
    const float s = 1.0f / std::sqrt((float)cols) * 1.7f;
    return tensor(name, {rows, cols}, -s, s);
  };
  m.weights.token_embd = tensor("token_embd", {c.vocab_size, c.dim}, -1.f, 1.f);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights L;
    L.attn_norm = tensor("attn_norm", {c.dim}, 0.5f, 1.5f);
    L.wq = mat("wq", q, c.dim);
    L.wk = mat("wk", kv, c.dim);
    L.wv = mat("wv", kv, c.dim);
    L.wo = mat("wo", c.dim, q);
    L.ffn_norm = tensor("ffn_norm", {c.dim}, 0.5f, 1.5f);
    L.w_gate = mat("w_gate", c.hidden_dim, c.dim);
    L.w_up = mat("w_up", c.hidden_dim, c.dim);
    L.w_down = mat("w_down", c.dim, c.hidden_dim);
    m.weights.layers.push_back(L);
  }
  m.weights.output_norm = tensor("output_norm", {c.dim}, 0.5f, 1.5f);
  m.weights.output = c.tied_embeddings ? m.weights.token_embd : mat("output", c.vocab_size, c.dim);
  return m;
}

}  // namespace frugal::cuda::test
