#include "model/config.h"

namespace frugal {

int64_t ModelConfig::param_count() const {
  const int64_t per_layer = dim * dim * 2            // wq, wo
                            + 2 * dim * kv_dim()     // wk, wv
                            + 3 * dim * hidden_dim   // gate, up, down
                            + 2 * dim;               // two norms
  return vocab_size * dim * (tied_embeddings ? 1 : 2) + n_layers * per_layer + dim;
}

Status ModelConfig::validate() const {
  auto bad = [](const std::string& m) { return InvalidArgument("model config: " + m); };
  if (vocab_size <= 0) return bad("vocab_size must be positive");
  if (dim <= 0) return bad("hidden size (dim) must be positive");
  if (hidden_dim <= 0) return bad("FFN size (hidden_dim) must be positive");
  if (n_layers <= 0) return bad("n_layers must be positive");
  if (n_heads <= 0) return bad("n_heads must be positive");
  if (n_kv_heads <= 0) return bad("n_kv_heads must be positive");
  if (dim % n_heads != 0)
    return bad("n_heads (" + std::to_string(n_heads) + ") does not divide dim (" +
               std::to_string(dim) + ")");
  if (n_heads % n_kv_heads != 0)
    return bad("n_kv_heads (" + std::to_string(n_kv_heads) + ") does not divide n_heads (" +
               std::to_string(n_heads) + ")");
  if (head_dim() % 2 != 0) return bad("head_dim must be even for RoPE");
  if (max_seq_len <= 0) return bad("context length must be positive");
  return Status::Ok();
}

}  // namespace frugal
