// Filling a LlamaCuda (llama_cuda.cuh) from a loaded Model or with dummy weights for a preset
// architecture. Host-side C++ (compiled by the host compiler into frugal_cuda); the device code
// knows nothing of Model, TensorView or the planner.
#pragma once

#include <memory>
#include <string_view>

#include "base/status.h"
#include "model/config.h"
#include "model/cuda/dummy.h"
#include "model/cuda/llama_cuda.cuh"
#include "model/model.h"

namespace frugal::cuda {

// The runner's dimensions for a model config. Unsupported (named) for what the CUDA path lacks.
Result<LlamaDims> llama_dims(const ModelConfig& c);

// Creates the runner and uploads every weight once: each row of any CPU dtype is dequantized to
// float on the host (quant::dequantize_row) and rounded to bf16 (round to nearest even); Q/K/V
// rows go into one fused matrix, gate/up into another. Options: max_seq_len 0 means the
// model's context (capped at 4096).
Result<std::unique_ptr<LlamaCuda>> upload_model(const Model& m, LlamaCudaOptions o);

}  // namespace frugal::cuda
