// ModelSpec from the places a model description comes from: a ModelConfig, a Hugging Face
// config.json, a GGUF file (with its exact per-tensor bytes), explicit dims, or a preset name.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "planner/model_spec.h"
#include "planner/plan_types.h"

namespace frugal::planner {

// `v` as an int for `field`; InvalidArgument naming the field when out of [0, 2^31).
Result<int> checked_int(int64_t v, const char* field);

// A Llama-family ModelConfig (SwiGLU, RMSNorm, no biases).
ModelSpec spec_from_model_config(const ModelConfig& c);

// From the text of a config.json. model_type selects the layout:
//   llama, mistral, mixtral, qwen2, gemma, gemma2: hidden_size, intermediate_size,
//     num_hidden_layers, num_attention_heads, vocab_size (required); num_key_value_heads,
//     head_dim, max_position_embeddings, tie_word_embeddings, attention_bias, mlp_bias,
//     sliding_window, num_local_experts, num_experts_per_tok (optional)
//   falcon (RefinedWeb*): hidden_size|n_embed, num_hidden_layers|n_layer,
//     num_attention_heads|n_head, vocab_size; multi_query, new_decoder_architecture,
//     num_kv_heads|n_head_kv, parallel_attn, bias, ffn_hidden_size (default 4h)
//   gpt_bigcode: n_embd, n_layer, n_head, vocab_size; n_inner (default 4 n_embd), multi_query,
//     n_positions
// Another model_type is read as Llama-like and says so in `family`. A missing required field
// is NotFound naming it; a field of the wrong type is InvalidArgument naming it.
Result<ModelSpec> spec_from_hf_json_text(const std::string& text, const std::string& origin);
// A path to config.json or to a directory holding one.
Result<ModelSpec> spec_from_hf_json(const std::string& path);

// From GGUF metadata ({arch}.block_count, .embedding_length, .feed_forward_length,
// .attention.head_count required; .attention.head_count_kv, .attention.key_length,
// .context_length, .vocab_size, .expert_count, .expert_used_count optional) and the tensor
// list (tied = no output.weight). `file` receives the bytes of every tensor by role.
Result<ModelSpec> spec_from_gguf(const gguf::GgufFile& g, FileWeights* file);

// Explicit dims: "layers=32,hidden=4096,heads=32,kv_heads=8,ffn=14336,vocab=128256" plus
// optional head_dim, context, experts, top_k, tied (0/1), ffn_kind (gated|plain),
// norm (rms|layernorm), name. NotFound naming a missing required key.
Result<ModelSpec> spec_from_dims(std::string_view dims);

// What `frugal plan -m X` resolves to: an existing .gguf file, a config.json or directory
// holding one, otherwise a preset name (NotFound with suggestions).
struct ModelInput {
  ModelSpec spec;
  std::optional<FileWeights> file;
  std::string source;  // "preset", "config.json: <path>", "GGUF: <path>", "dims"
};
Result<ModelInput> resolve_model(const std::string& name_or_path);

}  // namespace frugal::planner
