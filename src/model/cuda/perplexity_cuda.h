// Perplexity on the GPU (issue 7): eval/perplexity.h's windows and scoring rule
// (perplexity_from_logits) with the logits from LlamaCuda — the model uploaded once as bf16,
// one sequence slot of ctx positions, paged bf16 KV. Each window restarts at position 0.
// The window goes through in prefill chunks of up to 512 tokens with every row's logits kept
// (LlamaCuda::prefill_logits): the cuBLAS path, bf16 activations into the projections.
// CUDA-free header: the CLI includes it in every build, and links it only with CUDA.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "base/status.h"
#include "eval/perplexity.h"
#include "model/model.h"

namespace frugal::cuda {

struct CudaPerplexityParams {
  PerplexityParams ppl;  // ctx, max_chunks (batch: positions per logits call; kv unused)
  // The planner checks that the model and one window fit this share of device memory; the
  // arena then holds exactly one window's KV (ctx positions).
  double gpu_memory_utilization = 0.9;
};

struct CudaPerplexityResult {
  PerplexityResult ppl;
  double upload_seconds = 0;
  std::string device;  // "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)"
  std::string memory;  // the arena's bytes by purpose
};

// Errors: those of perplexity_from_logits (context, text too short); Unavailable without a
// device; Unsupported for a model the CUDA runner lacks; ResourceExhausted (bytes) when the
// model and one window's KV do not fit the budget.
Result<CudaPerplexityResult> perplexity_cuda(const Model& model, std::span<const int32_t> tokens,
                                             const CudaPerplexityParams& params,
                                             const PerplexityProgress& progress = nullptr);

}  // namespace frugal::cuda
