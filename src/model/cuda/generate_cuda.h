// Single-sequence generation on the GPU (issue 7): the CPU generate()'s loop (runtime/generate.h)
// over LlamaCuda — the whole model uploaded once as bf16 into one arena whose KV share comes
// from --gpu-memory-utilization through the planner, prefill in chunks, one decode step per
// token, the token chosen on the device (argmax, or the device sampler with the CPU Sampler's
// uniform stream, so a seed means the same thing on both). Only token ids cross to the host.
// This header needs no CUDA headers: the CLI includes it in every build and links the
// implementation (frugal_cuda) only when built with CUDA.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "base/status.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "sampling/sampler.h"

namespace frugal::cuda {

// Ok when a CUDA device is usable; else Unavailable("no CUDA device: <the CUDA error text>").
Status require_device();

struct CudaGenerateParams {
  int64_t max_new_tokens = 128;
  int64_t n_ctx = 0;       // positions of the sequence; 0: prompt + max_new_tokens (<= model's)
  bool ignore_eos = false;
  SamplerParams sampler;   // all of it on the device (repetition penalty included)
  double gpu_memory_utilization = 0.9;  // the arena's share of device memory (planner split)
  int max_prefill_tokens = 512;         // prefill chunk
};

struct CudaGenerateResult {
  GenerateStats stats;         // kv_bytes: the KV pool in the arena
  double upload_seconds = 0;   // arena + weight upload (bf16 conversion on the host)
  std::string device;          // "NVIDIA H200 (132 SMs, 139.8 GiB)"
  std::string memory;          // the planner's split of the arena
};

// Errors: those of generate() for the prompt and settings; Unavailable without a device;
// ResourceExhausted naming the shortfall in bytes when the model and one sequence's KV do not
// fit the budget; a CUDA failure mid-run as its Status (the call and the CUDA error text).
Result<CudaGenerateResult> generate_cuda(const Model& model, std::span<const int32_t> prompt,
                                         const CudaGenerateParams& params,
                                         const std::function<bool(int32_t)>& on_token);

}  // namespace frugal::cuda
