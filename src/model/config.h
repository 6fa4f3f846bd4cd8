// ModelConfig: the architecture of a Llama-family decoder, independent of the file it came from.
// Built from GGUF metadata, a Hugging Face config.json, or a llama2.c header (model/loader.h).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace frugal {

enum class RopeLayout {
  kAdjacent,  // pairs (2i, 2i+1): GGUF llama files (Q/K rows permuted by the converter), llama2.c
  kHalf,      // pairs (i, i+d/2): Hugging Face checkpoints
};

struct ModelConfig {
  std::string arch = "llama";
  std::string name;
  int64_t vocab_size = 0;
  int64_t dim = 0;         // hidden size (embedding_length)
  int64_t hidden_dim = 0;  // FFN inner size (feed_forward_length)
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;      // == n_heads: MHA; 1: MQA; otherwise GQA
  int64_t max_seq_len = 0; // context_length
  float rope_base = 10000.0f;
  float norm_eps = 1e-5f;
  bool tied_embeddings = false;  // output projection reuses token_embd
  RopeLayout rope_layout = RopeLayout::kAdjacent;

  int64_t head_dim() const { return dim / n_heads; }
  int64_t kv_dim() const { return head_dim() * n_kv_heads; }
  int kv_groups() const { return n_heads / n_kv_heads; }  // query heads per KV head
  // Bytes of K and V for one token over all layers at `bytes_per_elem`.
  int64_t kv_bytes_per_token(int bytes_per_elem) const {
    return 2LL * n_layers * n_kv_heads * head_dim() * bytes_per_elem;
  }
  // Parameter count implied by the dimensions (embeddings counted once when tied).
  int64_t param_count() const;

  // Checks internal consistency: positive sizes, heads divide dim, kv heads divide heads.
  Status validate() const;
};

}  // namespace frugal
