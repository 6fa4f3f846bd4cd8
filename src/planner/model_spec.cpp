#include "planner/model_spec.h"

#include <fmt/format.h>

namespace frugal::planner {

const char* tensor_role_name(TensorRole r) {
  switch (r) {
    case TensorRole::kEmbedding: return "embedding";
    case TensorRole::kPositions: return "positions";
    case TensorRole::kLmHead: return "lm_head";
    case TensorRole::kAttnQ: return "attn_q";
    case TensorRole::kAttnKV: return "attn_kv";
    case TensorRole::kAttnOut: return "attn_out";
    case TensorRole::kFfnIn: return "ffn_in";
    case TensorRole::kFfnOut: return "ffn_out";
    case TensorRole::kRouter: return "router";
    case TensorRole::kNorm: return "norm";
    case TensorRole::kCount: break;
  }
  return "?";
}

Status ModelSpec::validate() const {
  auto bad = [&](const std::string& m) {
    return InvalidArgument("model " + (name.empty() ? std::string("(unnamed)") : name) + ": " + m);
  };
  if (vocab_size <= 0) return bad("vocab_size must be positive");
  if (hidden <= 0) return bad("hidden size must be positive");
  if (ffn_dim <= 0) return bad("FFN size must be positive");
  if (n_layers <= 0) return bad("number of layers must be positive");
  if (n_heads <= 0) return bad("number of attention heads must be positive (got " +
                               std::to_string(n_heads) + ")");
  if (n_kv_heads <= 0) return bad("number of KV heads must be positive (got " +
                                  std::to_string(n_kv_heads) + ")");
  if (head_dim < 0) return bad("head_dim must not be negative");
  if (head_dim == 0 && hidden % n_heads != 0)
    return bad(fmt::format("{} heads do not divide hidden size {} (and no head_dim is given)",
                           n_heads, hidden));
  if (n_heads % n_kv_heads != 0)
    return bad(fmt::format("{} KV heads do not divide {} query heads", n_kv_heads, n_heads));
  // Plausibility limits (far above any published model) keep every byte and FLOP count of the
  // planner inside 64-bit arithmetic.
  if (vocab_size > (int64_t{1} << 24) || hidden > (int64_t{1} << 17) || ffn_dim > (int64_t{1} << 20) ||
      n_layers > 4096 || n_heads > 65536 || head_dim > 65536 || n_experts > 1024 ||
      learned_positions > (int64_t{1} << 26) || max_context > (int64_t{1} << 30) || norms_per_layer > 16)
    return bad("implausibly large dimensions (limits: vocab 2^24, hidden 2^17, FFN 2^20, 4096 layers, "
               "65536 heads, 1024 experts)");
  if (head_dim > 0 && (int64_t)n_heads * head_dim > (int64_t{1} << 20))
    return bad("heads x head_dim implausibly large");
  if (max_context < 0) return bad("context length must not be negative");
  if (norms_per_layer < 0) return bad("norms per layer must not be negative");
  if (learned_positions < 0) return bad("learned position rows must not be negative");
  if (n_experts < 0 || experts_per_token < 0) return bad("expert counts must not be negative");
  if (n_experts > 1 && (experts_per_token < 1 || experts_per_token > n_experts))
    return bad(fmt::format("experts per token must be in [1, {}] (got {})", n_experts,
                           experts_per_token));
  return Status::Ok();
}

std::string ModelSpec::summary() const {
  std::string attn = n_kv_heads == n_heads ? "MHA" : (n_kv_heads == 1 ? "MQA" : "GQA");
  std::string s = fmt::format("{} layers, hidden {}, {} {}/{} heads x {}, {} FFN {}", n_layers,
                              hidden, attn, n_heads, n_kv_heads, hd(),
                              ffn == FfnKind::kGated ? "gated" : "plain", ffn_dim);
  if (is_moe()) s += fmt::format(" x {} experts (top-{})", n_experts, experts_per_token);
  s += fmt::format(", vocab {}", vocab_size);
  if (tied_embeddings) s += ", tied embeddings";
  return s;
}

std::vector<TensorGroup> tensor_groups(const ModelSpec& m) {
  std::vector<TensorGroup> g;
  const int64_t h = m.hidden, q = m.q_dim(), kv = m.kv_dim(), f = m.ffn_dim;
  auto mat = [&](std::string name, TensorRole role, Split split, int64_t in, int64_t out,
                 bool per_layer = true, bool expert = false, int64_t count = 1) {
    g.push_back({std::move(name), role, split, in, out, true, per_layer, expert, count});
  };
  auto vec = [&](std::string name, TensorRole role, Split split, int64_t len, int64_t count = 1,
                 bool per_layer = true, bool expert = false) {
    g.push_back({std::move(name), role, split, len, 1, false, per_layer, expert, count});
  };

  // Token embedding [vocab, h]: one row per token id.
  mat("token_embd.weight", TensorRole::kEmbedding, Split::kVocab, h, m.vocab_size, false);
  if (m.learned_positions > 0)
    mat("position_embd.weight", TensorRole::kPositions, Split::kReplicated, h,
        m.learned_positions, false);
  if (!m.tied_embeddings)
    mat("output.weight", TensorRole::kLmHead, Split::kVocab, h, m.vocab_size, false);

  // Attention: Q [q, h], K and V [kv, h] each, O [h, q].
  mat("blk.*.attn_q.weight", TensorRole::kAttnQ, Split::kOut, h, q);
  mat("blk.*.attn_k/v.weight", TensorRole::kAttnKV, Split::kKvHeads, h, kv, true, false, 2);
  mat("blk.*.attn_output.weight", TensorRole::kAttnOut, Split::kIn, q, h);

  // FFN, per expert for MoE.
  const bool moe = m.is_moe();
  const int64_t n_in = m.ffn == FfnKind::kGated ? 2 : 1;
  mat(m.ffn == FfnKind::kGated ? "blk.*.ffn_gate/up.weight" : "blk.*.ffn_up.weight",
      TensorRole::kFfnIn, Split::kOut, h, f, true, moe, n_in);
  mat("blk.*.ffn_down.weight", TensorRole::kFfnOut, Split::kIn, f, h, true, moe);
  if (moe) mat("blk.*.ffn_gate_inp.weight", TensorRole::kRouter, Split::kReplicated, h, m.n_experts);

  // Vectors: linear biases, then norms.
  if (m.qkv_bias) {
    vec("blk.*.attn_q.bias", TensorRole::kAttnQ, Split::kOut, q);
    vec("blk.*.attn_k/v.bias", TensorRole::kAttnKV, Split::kKvHeads, kv, 2);
  }
  if (m.attn_out_bias) vec("blk.*.attn_output.bias", TensorRole::kAttnOut, Split::kReplicated, h);
  if (m.ffn_bias) {
    vec("blk.*.ffn_up.bias", TensorRole::kFfnIn, Split::kOut, f, n_in, true, moe);
    vec("blk.*.ffn_down.bias", TensorRole::kFfnOut, Split::kReplicated, h, 1, true, moe);
  }
  const int64_t per_norm = m.norm == NormKind::kLayerNorm ? 2 : 1;  // weight (+ bias)
  if (m.norms_per_layer > 0)
    vec("blk.*.*_norm", TensorRole::kNorm, Split::kReplicated, h, per_norm * m.norms_per_layer);
  if (m.final_norm) vec("output_norm", TensorRole::kNorm, Split::kReplicated, h, per_norm, false);
  return g;
}

ParamCounts count_params(const ModelSpec& m) {
  ParamCounts c;
  for (const TensorGroup& t : tensor_groups(m)) {
    const int64_t n = t.params_each() * t.instances(m);
    c.total += n;
    int64_t active = n;
    if (t.expert) active = n / m.n_experts * m.experts_per_token;
    c.active += active;
    switch (t.role) {
      case TensorRole::kEmbedding:
      case TensorRole::kPositions: c.embedding += n; break;
      case TensorRole::kLmHead: c.lm_head += n; break;
      case TensorRole::kAttnQ:
      case TensorRole::kAttnKV:
      case TensorRole::kAttnOut: c.attention += n; break;
      case TensorRole::kFfnIn:
      case TensorRole::kFfnOut: c.ffn += n; break;
      default: c.other += n; break;
    }
    const bool lookup = t.role == TensorRole::kEmbedding || t.role == TensorRole::kPositions;
    if (t.matrix && !lookup) c.matmul_active += active;
  }
  // The LM head multiplies by [vocab, h] whether or not it shares the embedding's storage.
  if (m.tied_embeddings) c.matmul_active += m.vocab_size * m.hidden;
  return c;
}

}  // namespace frugal::planner
