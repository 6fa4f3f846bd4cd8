// ModelConfig from model files: GGUF metadata and Hugging Face config.json. (llama2.c headers
// are turned into a ModelConfig by formats/llama2c.h.)
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "formats/gguf.h"
#include "model/config.h"

namespace frugal {

// From a GGUF file with general.architecture "llama" (Unsupported otherwise). Reads
//   llama.block_count, .embedding_length, .feed_forward_length, .attention.head_count,
//   .context_length, .attention.layer_norm_rms_epsilon            (required: NotFound naming
//                                                                   the key when absent)
//   llama.attention.head_count_kv (default head_count), .rope.freq_base (default 10000),
//   llama.vocab_size (default: length of tokenizer.ggml.tokens; NotFound if neither exists),
//   general.name (optional).
// tied_embeddings = no "output.weight" tensor; rope_layout = kAdjacent. Also checks that
// llama.rope.dimension_count (if present) equals head_dim (Unsupported otherwise: partial RoPE)
// and that token_embd.weight (if present) has dims [dim, vocab] (Corrupt otherwise). Finally
// validate(); its failure is reported as Corrupt naming the file.
Result<ModelConfig> config_from_gguf(const gguf::GgufFile& file);

// From a Hugging Face config.json (LlamaForCausalLM / MistralForCausalLM style); a directory
// means "<dir>/config.json". Required: hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, vocab_size, max_position_embeddings, rms_norm_eps (NotFound naming the
// field when absent, Corrupt when not a number). Defaults: num_key_value_heads =
// num_attention_heads, rope_theta = 10000, tie_word_embeddings = false. rope_layout = kHalf;
// name = "_name_or_path" if present. max_seq_len is capped at "sliding_window" when that is set
// (sliding-window attention equals full attention up to the window). Unsupported: an
// "architectures" entry other than LlamaForCausalLM/MistralForCausalLM, hidden_act other than
// silu, attention_bias/mlp_bias true, head_dim != hidden_size / num_attention_heads.
// JSON syntax errors: Corrupt with nlohmann's message. Finally validate() (Corrupt naming the file).
// Note: "rope_scaling" is not represented in ModelConfig and is ignored.
Result<ModelConfig> config_from_hf_json(const std::string& config_json_path);

// The Hugging Face config.json (LlamaForCausalLM) describing `c`: the fields
// config_from_hf_json reads (so the two round-trip), plus architectures, model_type, hidden_act
// "silu", attention_bias/mlp_bias false, head_dim, and torch_dtype (e.g. "float16"). Floats are
// written with the shortest decimal that reads back as the same float32 (eps 1e-05, not
// 9.99999975e-06). bos/eos ids are written when >= 0.
nlohmann::ordered_json config_to_hf_json(const ModelConfig& c, const std::string& torch_dtype, int32_t bos_token_id = -1,
                                         int32_t eos_token_id = -1);

}  // namespace frugal
