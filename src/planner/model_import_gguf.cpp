// ModelSpec and exact per-role weight bytes from a GGUF file.
#include <fmt/format.h>

#include <map>

#include "planner/model_import.h"

namespace frugal::planner {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool contains(std::string_view s, std::string_view p) { return s.find(p) != std::string_view::npos; }

// Role of a GGUF tensor by its name (llama.cpp naming). kCount: the fused QKV tensor.
TensorRole role_of(std::string_view name, bool* fused_qkv) {
  *fused_qkv = false;
  if (starts_with(name, "token_embd.")) return TensorRole::kEmbedding;
  if (starts_with(name, "position_embd.")) return TensorRole::kPositions;
  if (starts_with(name, "output.")) return TensorRole::kLmHead;
  if (contains(name, "_norm")) return TensorRole::kNorm;
  if (contains(name, ".attn_qkv.")) {
    *fused_qkv = true;
    return TensorRole::kAttnQ;
  }
  if (contains(name, ".attn_q.")) return TensorRole::kAttnQ;
  if (contains(name, ".attn_k.") || contains(name, ".attn_v.")) return TensorRole::kAttnKV;
  if (contains(name, ".attn_output.")) return TensorRole::kAttnOut;
  if (contains(name, ".ffn_gate_inp.")) return TensorRole::kRouter;
  if (contains(name, ".ffn_gate") || contains(name, ".ffn_up")) return TensorRole::kFfnIn;
  if (contains(name, ".ffn_down")) return TensorRole::kFfnOut;
  return TensorRole::kNorm;  // anything else small and per layer (e.g. rope factors)
}

bool is_float_type(uint32_t t) {
  return t == (uint32_t)gguf::GgmlType::F32 || t == (uint32_t)gguf::GgmlType::F16 ||
         t == (uint32_t)gguf::GgmlType::BF16;
}

}  // namespace

Result<ModelSpec> spec_from_gguf(const gguf::GgufFile& g, FileWeights* file) {
  FRUGAL_ASSIGN_OR_RETURN(const std::string arch, g.get_string("general.architecture"));
  const std::string p = arch + ".";
  auto required = [&](const std::string& key) -> Result<int64_t> {
    FRUGAL_ASSIGN_OR_RETURN(uint64_t v, g.get_u64(key));
    if (v > (uint64_t{1} << 40)) return Corrupt(g.path() + ": " + key + " implausibly large");
    return (int64_t)v;
  };
  auto optional = [&](const std::string& key, int64_t dflt) -> Result<int64_t> {
    if (!g.find(key)) return dflt;
    return required(key);
  };

  ModelSpec m;
  m.family = arch;
  m.name = arch;
  if (g.find("general.name")) {
    Result<std::string> n = g.get_string("general.name");
    if (n.ok() && !n->empty()) m.name = *n;
  }
  FRUGAL_ASSIGN_OR_RETURN(int64_t layers, required(p + "block_count"));
  FRUGAL_ASSIGN_OR_RETURN(m.hidden, required(p + "embedding_length"));
  FRUGAL_ASSIGN_OR_RETURN(m.ffn_dim, required(p + "feed_forward_length"));
  FRUGAL_ASSIGN_OR_RETURN(int64_t heads, required(p + "attention.head_count"));
  FRUGAL_ASSIGN_OR_RETURN(int64_t kv, optional(p + "attention.head_count_kv", heads));
  FRUGAL_ASSIGN_OR_RETURN(m.head_dim, optional(p + "attention.key_length", 0));
  FRUGAL_ASSIGN_OR_RETURN(m.max_context, optional(p + "context_length", 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t experts, optional(p + "expert_count", 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t top_k, optional(p + "expert_used_count", 0));
  FRUGAL_ASSIGN_OR_RETURN(m.n_layers, checked_int(layers, (p + "block_count").c_str()));
  FRUGAL_ASSIGN_OR_RETURN(m.n_heads, checked_int(heads, (p + "attention.head_count").c_str()));
  FRUGAL_ASSIGN_OR_RETURN(m.n_kv_heads, checked_int(kv, (p + "attention.head_count_kv").c_str()));
  FRUGAL_ASSIGN_OR_RETURN(m.n_experts, checked_int(experts, (p + "expert_count").c_str()));
  FRUGAL_ASSIGN_OR_RETURN(m.experts_per_token, checked_int(top_k, (p + "expert_used_count").c_str()));
  if (m.head_dim > 0 && heads > 0 && m.head_dim == m.hidden / heads) m.head_dim = 0;

  // Vocabulary: explicit key, else the token list, else the embedding's rows.
  if (g.find(p + "vocab_size")) {
    FRUGAL_ASSIGN_OR_RETURN(m.vocab_size, required(p + "vocab_size"));
  } else if (const gguf::Value* toks = g.find("tokenizer.ggml.tokens"); toks && toks->array()) {
    m.vocab_size = (int64_t)toks->array()->size();
  } else if (const gguf::TensorInfo* e = g.find_tensor("token_embd.weight"); e && e->dims.size() == 2) {
    m.vocab_size = (int64_t)e->dims[1];
  } else {
    return NotFound(g.path() + ": no " + p + "vocab_size, tokenizer.ggml.tokens or token_embd.weight");
  }
  m.tied_embeddings = g.find_tensor("output.weight") == nullptr;

  // Layout by architecture (llama.cpp's names).
  if (arch == "qwen2") {
    m.qkv_bias = true;
  } else if (arch == "gemma2") {
    m.norms_per_layer = 4;
  } else if (arch == "falcon") {
    m.ffn = FfnKind::kPlain;
    m.norm = NormKind::kLayerNorm;
    m.parallel_block = true;
    m.norms_per_layer = g.find_tensor("blk.0.attn_norm_2.weight") ? 2 : 1;
  } else if (arch == "starcoder") {
    m.family = "gpt_bigcode";
    m.ffn = FfnKind::kPlain;
    m.norm = NormKind::kLayerNorm;
    m.qkv_bias = m.attn_out_bias = m.ffn_bias = true;
    if (const gguf::TensorInfo* pe = g.find_tensor("position_embd.weight"); pe && pe->dims.size() == 2)
      m.learned_positions = (int64_t)pe->dims[1];
  } else if (arch != "llama" && arch != "mistral" && arch != "mixtral") {
    m.family = arch + " (read as Llama-like)";
  }
  if (Status st = m.validate(); !st.ok()) return Corrupt(g.path() + ": " + st.message());

  if (file) {
    *file = FileWeights{};
    std::map<std::string, int> type_counts;
    const double q_share = (double)m.q_dim() / (double)(m.q_dim() + 2 * m.kv_dim());
    for (const gguf::TensorInfo& t : g.tensors()) {
      bool fused = false;
      const TensorRole role = role_of(t.name, &fused);
      uint64_t elems = 1;
      for (uint64_t d : t.dims) elems *= d;
      const uint64_t q_elems = is_float_type(t.ggml_type) ? 0 : elems;
      if (fused) {  // split Q and K/V by their rows
        const auto qb = (uint64_t)((double)t.nbytes * q_share + 0.5);
        const auto qe = (uint64_t)((double)elems * q_share + 0.5);
        file->bytes[(int)TensorRole::kAttnQ] += qb;
        file->bytes[(int)TensorRole::kAttnKV] += t.nbytes - qb;
        file->elems[(int)TensorRole::kAttnQ] += qe;
        file->elems[(int)TensorRole::kAttnKV] += elems - qe;
        if (q_elems) {
          file->quantized_elems[(int)TensorRole::kAttnQ] += qe;
          file->quantized_elems[(int)TensorRole::kAttnKV] += elems - qe;
        }
      } else {
        file->bytes[(int)role] += t.nbytes;
        file->elems[(int)role] += elems;
        file->quantized_elems[(int)role] += q_elems;
      }
      ++type_counts[gguf::ggml_type_name(t.ggml_type)];
    }
    for (const auto& [name, n] : type_counts)
      file->description += fmt::format("{}{} x {}", file->description.empty() ? "" : ", ", name, n);
  }
  return m;
}

}  // namespace frugal::planner
