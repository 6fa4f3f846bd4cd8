// ModelConfig → Hugging Face config.json (see model_config_io.h).
#include <fmt/format.h>

#include <string>

#include "model/model_config_io.h"

namespace frugal {

namespace {
// The shortest decimal that reads back as the same float32, as a double ("1e-05" → 1e-05).
double short_float(float x) { return std::stod(fmt::format("{}", x)); }
}  // namespace

nlohmann::ordered_json config_to_hf_json(const ModelConfig& c, const std::string& torch_dtype, int32_t bos_token_id,
                                         int32_t eos_token_id) {
  nlohmann::ordered_json j;
  if (!c.name.empty()) j["_name_or_path"] = c.name;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["hidden_size"] = c.dim;
  j["intermediate_size"] = c.hidden_dim;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = c.n_kv_heads;
  j["head_dim"] = c.head_dim();
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_seq_len;
  j["rope_theta"] = short_float(c.rope_base);
  j["rope_scaling"] = nullptr;
  j["rms_norm_eps"] = short_float(c.norm_eps);
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["tie_word_embeddings"] = c.tied_embeddings;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_id >= 0) j["eos_token_id"] = eos_token_id;
  j["torch_dtype"] = torch_dtype;
  return j;
}

}  // namespace frugal
