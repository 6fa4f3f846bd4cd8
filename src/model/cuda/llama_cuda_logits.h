// Every position's logits of a run of prompt tokens (perplexity on the GPU): batched through
// LlamaCuda::prefill_logits when the runner keeps every row's logits (options
// prefill_all_logits: chunks of max_prefill_tokens, the LM head over all rows), else one token
// per forward pass through LlamaCuda::prefill (the decode path's GEMVs and split-K attention).
#pragma once

#include <cstdint>

#include "base/status.h"
#include "model/cuda/llama_cuda.cuh"

namespace frugal::cuda {

// Runs tokens[0, n) of slot's sequence at positions [pos, pos + n), writing their K/V; logits
// (host, [n, vocab]) row i receives the logits after token i. Errors: those of prefill.
Status prefill_all_logits(LlamaCuda& g, int slot, const int32_t* tokens, int64_t n, int64_t pos,
                          float* logits);

}  // namespace frugal::cuda
