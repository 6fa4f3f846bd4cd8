// Perplexity over a token stream.
//
// Scoring rule: the stream is cut into consecutive non-overlapping windows of `ctx` tokens (a
// trailing partial window is dropped). Each window is evaluated from an empty KV cache, and
// every token of the window except the first is scored by the model's prediction from the
// tokens before it in the same window: ctx-1 scored tokens per window, as in the GPTQ/AWQ
// evaluations (llama.cpp's `perplexity` scores only the second half of each window, so its
// numbers are not comparable). PPL = exp(mean negative log-likelihood over all scored tokens).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "backend/cpu/ops.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/prefill_activations.h"

namespace frugal {

struct PerplexityParams {
  int64_t ctx = 512;
  int64_t max_chunks = 0;  // 0: all full windows
  int64_t batch = 256;     // tokens per forward pass within a window
  KvCacheOptions kv;       // the cache the windows run on (kind, dtype, block size)
  PrefillActivations prefill_act;  // the CPU runner's GEMM activations
};

struct PerplexityResult {
  double ppl = 0;
  double mean_nll = 0;
  double nll_stderr = 0;  // standard error of the mean NLL
  int64_t n_chunks = 0;
  int64_t n_scored = 0;
  double seconds = 0;
};

// progress(done_chunks, total_chunks, running_ppl) after each window.
using PerplexityProgress = std::function<void(int64_t, int64_t, double)>;

// Fills logits[i * vocab, (i + 1) * vocab) with the model's prediction after tokens
// window[0, start + i] for i in [0, n); start == 0 begins a new window (an empty cache).
using WindowLogitsFn = std::function<Status(std::span<const int32_t> window, int64_t start,
                                            int64_t n, std::span<float> logits)>;

// The windowing and scoring rule above over any source of logits (the CPU runner, the GPU):
// windows of params.ctx, params.batch positions per call of `logits` (params.kv is unused).
Result<PerplexityResult> perplexity_from_logits(int64_t vocab, int64_t max_seq_len,
                                                std::span<const int32_t> tokens,
                                                const PerplexityParams& params,
                                                const WindowLogitsFn& logits,
                                                const PerplexityProgress& progress = nullptr);

Result<PerplexityResult> perplexity(
    const Model& model, ThreadPool& pool, std::span<const int32_t> tokens,
    const PerplexityParams& params,
    const std::function<void(int64_t, int64_t, double)>& progress = nullptr);

}  // namespace frugal
