// The `quantization_config` of a Hugging Face model directory (config.json, or AutoGPTQ's
// quantize_config.json beside it): the formats frugal writes and reads back.
//
//   gptq                AutoGPTQ / GPTQModel, checkpoint_format "gptq" (v1: zeros stored minus one)
//                       or "gptq_v2" (zeros stored as they are). bits 2/3/4/8, group_size (−1: per
//                       channel), desc_act (act-order g_idx), sym, static_groups.
//                       Tensors: <linear>.qweight/.qzeros/.scales/.g_idx (quant/pack.h).
//   awq                 AutoAWQ, version "gemm", bits 4, zero_point true, group_size.
//                       Tensors: <linear>.qweight/.qzeros/.scales; modules_to_not_convert.
//   compressed-tensors  (llm-compressor; vLLM's own format for FP8 and INT8) with one config group
//                       targeting Linear: weights num_bits 8, type "float" (FP8 E4M3, format
//                       "float-quantized") or "int" (format "int-quantized"), symmetric, strategy
//                       "channel" (weight_scale [out, 1]) or "tensor" (weight_scale [1]);
//                       input_activations null (weight-only) or dynamic per-token (W8A8).
//                       Tensors: <linear>.weight (F8_E4M3 / I8) and <linear>.weight_scale.
//   fp8                 read only: vLLM/HF "fp8" checkpoints with a per-tensor (or per-row)
//                       weight_scale; block-wise (weight_block_size) is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace frugal::quant {

enum class HfQuantMethod { kGptq, kAwq, kCompressedTensors, kFp8 };
const char* hf_quant_method_name(HfQuantMethod m);

struct HfQuantConfig {
  HfQuantMethod method = HfQuantMethod::kGptq;
  int bits = 4;
  int64_t group = 0;              // group size along in; 0 = one group per row (json −1)
  // gptq
  bool sym = true;
  bool desc_act = false;
  bool static_groups = false;
  bool zeros_minus_one = true;    // checkpoint_format "gptq" (v1); false for "gptq_v2"
  // compressed-tensors / fp8
  bool weight_float = false;      // FP8 E4M3 weights (else int8)
  bool per_channel = true;        // strategy "channel" (else "tensor")
  bool dynamic_activations = false;  // W8A8: activations quantized per token at run time
  // input_activations {num_bits 8, type int, strategy token, dynamic true, symmetric} on int8
  // weights: what the engine runs as W8A8 (Model::int8_token_activations).
  bool int8_token_activations = false;
  std::vector<std::string> ignore;   // module names (or "re:" patterns) left unquantized
  // gptq: GPTQModel's per-module overrides {"+:regex": {"bits": .., "group_size": ..}, "-:regex": {}}
  // (written for mixed precision; on load each linear's bits/group come from its tensor shapes).
  nlohmann::ordered_json dynamic = nlohmann::ordered_json::object();

  // True when `module` (e.g. "lm_head", "model.layers.0.mlp.down_proj") is left unquantized.
  bool ignores(const std::string& module) const;
};

// The JSON object frugal writes as config.json's "quantization_config".
nlohmann::ordered_json hf_quant_config_to_json(const HfQuantConfig& c);

// Parses the quantization_config object `q` (`where` names the file for errors). Unsupported
// (naming the field) for methods, versions or options frugal cannot load; Corrupt for malformed
// values.
Result<HfQuantConfig> hf_quant_config_from_json(const nlohmann::json& q, const std::string& where);

// The directory's quantization config: config.json's "quantization_config", else
// quantize_config.json (AutoGPTQ's own file); nullopt when neither exists (a float checkpoint).
Result<std::optional<HfQuantConfig>> read_hf_quant_config(const std::string& dir);

// One line for `frugal info`: "gptq 4-bit g128 sym, act-order (AutoGPTQ v1)".
std::string describe(const HfQuantConfig& c);

}  // namespace frugal::quant
