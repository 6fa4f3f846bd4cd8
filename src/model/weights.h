// The weights of a Llama-family decoder as views (into a file mapping or an owned buffer).
// Shapes are outermost-first; every matrix is used as y = W·x with W = [out_features, in_features].
#pragma once

#include <memory>
#include <vector>

#include "tensor/tensor.h"

namespace frugal {

struct LayerWeights {
  TensorView attn_norm;  // [dim] F32
  TensorView wq;         // [n_heads*head_dim, dim]
  TensorView wk;         // [n_kv_heads*head_dim, dim]
  TensorView wv;         // [n_kv_heads*head_dim, dim]
  TensorView wo;         // [dim, n_heads*head_dim]
  TensorView ffn_norm;   // [dim] F32
  TensorView w_gate;     // [hidden_dim, dim]
  TensorView w_up;       // [hidden_dim, dim]
  TensorView w_down;     // [dim, hidden_dim]
};

struct ModelWeights {
  TensorView token_embd;  // [vocab, dim]
  std::vector<LayerWeights> layers;
  TensorView output_norm;  // [dim] F32
  TensorView output;       // [vocab, dim]; the same view as token_embd when embeddings are tied
};

}  // namespace frugal
