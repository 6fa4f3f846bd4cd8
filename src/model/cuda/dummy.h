// Dummy weights for a preset architecture (issue 7, like vLLM's dummy load format): the runner's
// dimensions for a planner preset; LlamaCuda::randomize_weights fills them on the device.
// C++17-clean so device-side benchmarks can include it.
#pragma once

#include <string_view>

#include "base/status.h"
#include "model/cuda/llama_cuda.cuh"

namespace frugal::cuda {

// Dimensions of a planner preset ("llama-3.1-8b", ...): a Llama-style decoder (gated FFN,
// RMSNorm, no biases, dense). Other families: Unsupported naming what differs; unknown names:
// NotFound with the closest preset names. Defined in llama_cuda_load.cpp.
Result<LlamaDims> dummy_dims(std::string_view preset);

}  // namespace frugal::cuda
