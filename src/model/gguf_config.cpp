// ModelConfig from GGUF llama metadata (see model_config_io.h).
#include <limits>

#include "model/model_config_io.h"

namespace frugal {

namespace {

// A required (or defaulted) positive-or-zero integer key that must fit in [0, max].
Result<int64_t> int_key(const gguf::GgufFile& f, const std::string& key, int64_t max,
                        const int64_t* fallback = nullptr) {
  if (fallback && !f.find(key)) return *fallback;
  FRUGAL_ASSIGN_OR_RETURN(uint64_t v, f.get_u64(key));
  if (v > (uint64_t)max)
    return Corrupt(f.path() + ": metadata key '" + key + "' value " + std::to_string(v) +
                   " is out of range");
  return (int64_t)v;
}

}  // namespace

Result<ModelConfig> config_from_gguf(const gguf::GgufFile& f) {
  FRUGAL_ASSIGN_OR_RETURN(std::string arch, f.get_string("general.architecture"));
  if (arch != "llama")
    return Unsupported(f.path() + ": architecture '" + arch +
                       "' is not supported (frugal reads llama)");
  const std::string p = arch + ".";
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

  ModelConfig c;
  c.arch = arch;
  if (const gguf::Value* n = f.find("general.name")) {
    if (Result<std::string> s = n->as_string(); s.ok()) c.name = *s;
  }
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_layers, int_key(f, p + "block_count", kIntMax));
  FRUGAL_ASSIGN_OR_RETURN(c.dim, int_key(f, p + "embedding_length", kI64Max));
  FRUGAL_ASSIGN_OR_RETURN(c.hidden_dim, int_key(f, p + "feed_forward_length", kI64Max));
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_heads, int_key(f, p + "attention.head_count", kIntMax));
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_kv_heads,
                          int_key(f, p + "attention.head_count_kv", kIntMax, &n_heads));
  FRUGAL_ASSIGN_OR_RETURN(c.max_seq_len, int_key(f, p + "context_length", kI64Max));
  FRUGAL_ASSIGN_OR_RETURN(double eps, f.get_f64(p + "attention.layer_norm_rms_epsilon"));
  double rope_base = 10000.0;
  if (f.find(p + "rope.freq_base")) {
    FRUGAL_ASSIGN_OR_RETURN(rope_base, f.get_f64(p + "rope.freq_base"));
  }
  c.n_layers = (int)n_layers;
  c.n_heads = (int)n_heads;
  c.n_kv_heads = (int)n_kv_heads;
  c.norm_eps = (float)eps;
  c.rope_base = (float)rope_base;

  if (f.find(p + "vocab_size")) {
    FRUGAL_ASSIGN_OR_RETURN(c.vocab_size, int_key(f, p + "vocab_size", kI64Max));
  } else if (const gguf::Value* toks = f.find("tokenizer.ggml.tokens"); toks && toks->is_array()) {
    c.vocab_size = (int64_t)toks->array()->size();
  } else {
    return NotFound(f.path() + ": metadata key '" + p +
                    "vocab_size' not found (and no 'tokenizer.ggml.tokens' array to count)");
  }
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  c.rope_layout = RopeLayout::kAdjacent;
  // RoPE scaling (Llama-3.1's per-frequency factors in rope_freqs.weight, or a scaling type key)
  // changes the rotation angles; refuse rather than silently compute a different model.
  if (f.find_tensor("rope_freqs.weight"))
    return Unsupported(f.path() + ": RoPE frequency factors (rope_freqs.weight) are not implemented yet");
  if (const gguf::Value* st = f.find(p + "rope.scaling.type")) {
    Result<std::string> type = st->as_string(p + "rope.scaling.type");
    if (!type.ok() || (*type != "none" && !type->empty()))
      return Unsupported(f.path() + ": " + p + "rope.scaling.type '" +
                         (type.ok() ? *type : std::string("?")) + "' is not implemented yet");
  }

  Status st = c.validate();
  if (!st.ok()) return Corrupt(f.path() + ": " + st.message());

  if (f.find(p + "rope.dimension_count")) {
    FRUGAL_ASSIGN_OR_RETURN(uint64_t rot, f.get_u64(p + "rope.dimension_count"));
    if ((int64_t)rot != c.head_dim())
      return Unsupported(f.path() + ": " + p + "rope.dimension_count " + std::to_string(rot) +
                         " differs from head_dim " + std::to_string(c.head_dim()) +
                         " (partial rotary embeddings are not supported)");
  }
  if (const gguf::TensorInfo* e = f.find_tensor("token_embd.weight")) {
    if (e->dims.size() != 2 || (int64_t)e->dims[0] != c.dim || (int64_t)e->dims[1] != c.vocab_size)
      return Corrupt(f.path() + ": tensor 'token_embd.weight' does not have dims [dim " +
                     std::to_string(c.dim) + ", vocab " + std::to_string(c.vocab_size) + "]");
  }
  return c;
}

}  // namespace frugal
