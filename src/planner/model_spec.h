// ModelSpec: the planner's description of a decoder-only transformer. Richer than ModelConfig
// (model/config.h): it also covers non-gated FFNs (Falcon, StarCoder), LayerNorm with bias,
// linear biases, learned position tables, head_dim != hidden / heads (Gemma-2) and MoE.
//
// The tensor inventory (tensor_groups) is the single place that says which matrices a model
// has; parameter counts, weight bytes and FLOPs are all sums over it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace frugal::planner {

enum class FfnKind : uint8_t {
  kGated,  // SwiGLU / GeGLU: gate [ffn, h], up [ffn, h], down [h, ffn]
  kPlain,  // GELU MLP: up [ffn, h], down [h, ffn]
};

enum class NormKind : uint8_t {
  kRms,        // weight only
  kLayerNorm,  // weight + bias
};

struct ModelSpec {
  std::string name;        // preset name or file name
  std::string family;      // "llama", "mistral", "mixtral", "qwen2", "gemma2", "falcon", "gpt_bigcode"
  int64_t vocab_size = 0;
  int64_t hidden = 0;      // d_model
  int64_t ffn_dim = 0;     // FFN inner size (per expert for MoE)
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;      // == n_heads: MHA; 1: MQA; otherwise GQA
  int64_t head_dim = 0;    // 0 means hidden / n_heads
  int64_t max_context = 0; // trained context length (0: unknown)
  FfnKind ffn = FfnKind::kGated;
  NormKind norm = NormKind::kRms;
  int norms_per_layer = 2; // Falcon-7B: 1 (one LayerNorm feeds attention and FFN); Gemma-2: 4
  bool final_norm = true;
  bool qkv_bias = false;       // biases on the Q, K, V projections (Qwen2, StarCoder)
  bool attn_out_bias = false;  // bias on the attention output projection
  bool ffn_bias = false;       // biases on the FFN projections
  bool tied_embeddings = false;  // LM head reuses the token embedding matrix
  int64_t learned_positions = 0; // rows of a learned absolute position table (GPT-BigCode)
  int n_experts = 0;             // MoE experts per layer (0: dense)
  int experts_per_token = 0;     // MoE top-k
  int64_t sliding_window = 0;    // informational only: the planner sizes the full KV cache
  bool parallel_block = false;   // attention and FFN run in parallel off one input (Falcon)

  int64_t hd() const { return head_dim > 0 ? head_dim : (n_heads > 0 ? hidden / n_heads : 0); }
  int64_t q_dim() const { return n_heads * hd(); }
  int64_t kv_dim() const { return n_kv_heads * hd(); }
  bool is_moe() const { return n_experts > 1; }

  // Positive sizes; heads divide hidden (unless head_dim is explicit); kv heads divide heads;
  // MoE top-k in [1, n_experts]. InvalidArgument naming the field.
  Status validate() const;
  // "80 layers, hidden 8192, GQA 64/8 heads x 128, SwiGLU FFN 28672, vocab 32000"
  std::string summary() const;
};

// What a tensor is for: decides its weight format, how tensor parallelism splits it, and
// whether it is read every decode step.
enum class TensorRole : uint8_t {
  kEmbedding,  // token embedding table (read: one row per token)
  kPositions,  // learned position table
  kLmHead,     // output projection (absent when tied)
  kAttnQ,      // query projection (and its bias)
  kAttnKV,     // key and value projections (and biases)
  kAttnOut,    // attention output projection
  kFfnIn,      // gate and up projections (per expert for MoE)
  kFfnOut,     // down projection
  kRouter,     // MoE router
  kNorm,       // norm weights and biases
  kCount
};
const char* tensor_role_name(TensorRole r);

// How tensor parallelism divides a tensor across `tp` devices.
enum class Split : uint8_t {
  kReplicated,  // every device holds all of it
  kOut,         // rows (outputs) divided: column-parallel linear
  kIn,          // row length (inputs) divided: row-parallel linear
  kKvHeads,     // rows divided by KV head, replicated when tp > n_kv_heads
  kVocab,       // vocabulary rows divided (rounded up)
};

// One kind of tensor: a matrix [out, in] or, when !matrix, a vector of `in` values (out = 1).
struct TensorGroup {
  std::string name;      // GGUF-style, e.g. "blk.*.attn_q.weight"
  TensorRole role = TensorRole::kNorm;
  Split split = Split::kReplicated;
  int64_t in = 0;
  int64_t out = 1;
  bool matrix = true;    // false: norm weight/bias or linear bias (kept in 16-bit)
  bool per_layer = true; // repeated n_layers times
  bool expert = false;   // repeated n_experts times per layer; top-k of them active per token
  int64_t count = 1;     // further multiplicity (e.g. gate and up as one group)

  // Instances in the whole model.
  int64_t instances(const ModelSpec& m) const {
    return count * (per_layer ? m.n_layers : 1) * (expert ? m.n_experts : 1);
  }
  int64_t params_each() const { return in * out; }
};

// Every tensor of the model; matrices first, per layer, then vectors.
std::vector<TensorGroup> tensor_groups(const ModelSpec& m);

struct ParamCounts {
  int64_t total = 0;
  int64_t active = 0;      // per token: top-k experts only
  int64_t embedding = 0;   // token table (+ learned positions)
  int64_t lm_head = 0;     // 0 when tied
  int64_t attention = 0;   // Q, K, V, O matrices and their biases, all layers
  int64_t ffn = 0;         // all experts for MoE
  int64_t other = 0;       // norms, router
  // Parameters multiplied in a forward pass of one token, excluding the embedding lookup and
  // with the LM head counted once (tied or not): 2x this is the matmul FLOPs per token.
  int64_t matmul_active = 0;
};
ParamCounts count_params(const ModelSpec& m);

}  // namespace frugal::planner
