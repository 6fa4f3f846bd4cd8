// Reader for llama2.c checkpoints (Karpathy's run.c "version 0" format).
//
// Layout (little-endian): 7 × int32 header {dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len}; a negative vocab_size means the classifier (wcls) is stored separately.
// Then fp32 arrays, each over all layers at once:
//   token_embedding [vocab, dim]      rms_att [L, dim]            wq [L, dim, dim]
//   wk [L, kv_dim, dim]               wv [L, kv_dim, dim]         wo [L, dim, dim]
//   rms_ffn [L, dim]                  w1 [L, hidden, dim]         w2 [L, dim, hidden]
//   w3 [L, hidden, dim]               rms_final [dim]
//   freq_cis_real, freq_cis_imag [seq_len, head_dim/2] each (legacy, skipped)
//   wcls [vocab, dim]                 only when vocab_size < 0
// with kv_dim = dim * n_kv_heads / n_heads. The file size must match exactly.
//
// Weights are exposed under GGUF names (token_embd.weight, blk.N.attn_q.weight, ...) as F32
// views into the mapping; RoPE pairs adjacent elements (kAdjacent), as in run.c.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "model/config.h"
#include "tensor/tensor.h"

namespace frugal::llama2c {

struct Header {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
};

class Llama2cModel {
 public:
  static Result<Llama2cModel> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const Header& header() const { return header_; }
  // arch "llama", name = file stem, rope_base 10000, norm_eps 1e-5, max_seq_len = seq_len,
  // tied_embeddings = (vocab_size > 0), rope_layout kAdjacent.
  const ModelConfig& config() const { return config_; }

  // In file order: token_embd, then per layer attn_norm, attn_q, attn_k, attn_v, attn_output,
  // ffn_norm, ffn_gate (w1), ffn_down (w2), ffn_up (w3); then output_norm; output.weight last
  // and only when the classifier is not shared. Shapes outermost-first ({out, in} for matrices).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(std::string_view name) const;  // nullptr if absent
  Result<TensorView> tensor(std::string_view name) const;  // NotFound naming file and tensor

 private:
  std::shared_ptr<MappedFile> file_;
  Header header_;
  ModelConfig config_;
  std::vector<TensorView> tensors_;
};

// Config implied by a header (validated; Corrupt naming the bad field, without a file path);
// `name` becomes ModelConfig::name.
Result<ModelConfig> config_from_header(const Header& h, const std::string& name);

}  // namespace frugal::llama2c
