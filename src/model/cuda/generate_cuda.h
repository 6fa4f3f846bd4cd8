// Single-sequence generation on the GPU (issue 7): the CPU generate()'s loop (runtime/generate.h)
// over LlamaCuda — the whole model uploaded once as bf16 into one arena whose KV share comes
// from --gpu-memory-utilization through the planner, prefill in chunks, one decode step per
// token, the token chosen on the device (argmax, or the device sampler with the CPU Sampler's
// uniform stream, so a seed means the same thing on both). Only token ids cross to the host.
// CudaSession keeps the sequence's K/V on the device between calls (multi-turn chat).
// This header needs no CUDA headers: the CLI includes it in every build and links the
// implementation (frugal_cuda) only when built with CUDA.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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

// One sequence that stays on the GPU across calls (frugal chat --device cuda): the model
// uploaded once, one LlamaCuda slot whose K/V persist between generate() calls. Each call gets
// the whole token sequence (e.g. the re-templated conversation): the K/V of its longest common
// prefix with the tokens already in the cache is kept (at least one token is recomputed, for
// the logits), only the rest is prefilled, at the positions that follow. generate_cuda() is one
// call of a fresh session.
struct CudaSessionParams {
  int64_t n_ctx = 0;                    // positions of the sequence (1 .. the model's maximum)
  double gpu_memory_utilization = 0.9;  // the arena's share of device memory (planner split)
  int max_prefill_tokens = 512;         // prefill chunk
  bool reuse_kv = true;                 // false: every call prefills its whole prompt
};

struct CudaTurnParams {
  int64_t max_new_tokens = 128;
  bool ignore_eos = false;
  SamplerParams sampler;  // a fresh uniform stream from its seed on every call, as generate()
};

class CudaSession {
 public:
  // Errors: n_ctx outside 1 .. the model's maximum (OutOfRange); those of generate_cuda for
  // the device and the memory budget.
  static Result<std::unique_ptr<CudaSession>> create(const Model& model,
                                                     const CudaSessionParams& params);
  ~CudaSession();
  CudaSession(const CudaSession&) = delete;
  CudaSession& operator=(const CudaSession&) = delete;

  // Generates after `prompt`, streaming each token to on_token (TokenStopRule, as generate()).
  // stats.n_prompt_cached: the prompt tokens whose K/V were kept from earlier calls. Errors: a
  // prompt longer than n_ctx (OutOfRange: the session stays usable), an empty prompt, ids
  // outside the vocabulary, bad sampler settings (InvalidArgument); a CUDA failure.
  Result<GenerateStats> generate(std::span<const int32_t> prompt, const CudaTurnParams& params,
                                 const std::function<bool(int32_t)>& on_token);

  int64_t n_ctx() const;
  double upload_seconds() const;   // arena + weight upload
  const std::string& device() const;
  const std::string& memory() const;  // the planner's split of the arena
  size_t kv_bytes() const;            // the KV pool in the arena

  struct State;

 private:
  explicit CudaSession(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace frugal::cuda
