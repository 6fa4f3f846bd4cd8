// A loaded model: its config, its weights (views) and whatever keeps them alive (file mappings,
// converted buffers), plus the tokenizer when the file carries one.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace frugal {

enum class ModelFormat { kGguf, kSafetensors, kLlama2c };
const char* model_format_name(ModelFormat f);

struct Model {
  ModelConfig config;
  ModelWeights weights;
  ModelFormat format = ModelFormat::kGguf;
  std::string path;
  std::optional<Tokenizer> tokenizer;  // absent for llama2.c checkpoints
  std::vector<std::shared_ptr<const void>> storage;  // keeps mappings / owned buffers alive
  // How a quantized checkpoint was loaded, one line each ("14 linears gptq 4-bit g32 → Q4_0",
  // "7 linears dequantized to F16: act-order g_idx"); empty for plain checkpoints.
  std::vector<std::string> notes;
  // W8A8: linears stored as I8_ROW run with int8 per-token dynamic activations
  // (cpu::matmul_i8_token) instead of float ones. Set by the loader when the checkpoint's
  // quantization_config asks for it (compressed-tensors input_activations: 8-bit int, strategy
  // token, dynamic); the CLI's --act-quant overrides it.
  bool int8_token_activations = false;
  // Set once the weights were placed for CPU inference (model/repack_model.h): a second
  // placement is a no-op.
  bool cpu_placed = false;

  // Bytes of weight data by dtype name, each tensor counted once (tied output not counted twice).
  std::map<std::string, size_t> weight_bytes_by_dtype() const;
  size_t weight_bytes() const;
};

// Loads a model from a GGUF file, a llama2.c checkpoint (.bin), or a Hugging Face directory
// (config.json + model.safetensors or a sharded model.safetensors.index.json; quantized
// directories — AutoGPTQ, AutoAWQ, compressed-tensors — are repacked into engine dtypes, see
// quant/hf_quant_load.h). The format is
// detected from the path (directory) and the file's magic. Every tensor's presence, shape and
// dtype are checked; an error names the file and the tensor.
Result<Model> load_model(const std::string& path);

}  // namespace frugal
