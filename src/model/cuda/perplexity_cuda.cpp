#include "model/cuda/perplexity_cuda.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "model/cuda/device_line.h"
#include "model/cuda/generate_cuda.h"
#include "model/cuda/llama_cuda_load.h"
#include "model/cuda/llama_cuda_logits.h"

namespace frugal::cuda {

Result<CudaPerplexityResult> perplexity_cuda(const Model& model, std::span<const int32_t> tokens,
                                             const CudaPerplexityParams& params,
                                             const PerplexityProgress& progress) {
  const ModelConfig& c = model.config;
  const PerplexityParams& pp = params.ppl;
  // The argument checks of the CPU path first (no device needed to say the text is too short).
  if (pp.ctx < 2) return InvalidArgument("perplexity context must be at least 2 tokens");
  if (pp.ctx > c.max_seq_len)
    return OutOfRange("perplexity context " + std::to_string(pp.ctx) +
                      " exceeds the model's maximum " + std::to_string(c.max_seq_len));
  if ((int64_t)tokens.size() < pp.ctx)
    return InvalidArgument("the text has " + std::to_string(tokens.size()) +
                           " tokens, fewer than one window of " + std::to_string(pp.ctx));
  FRUGAL_RETURN_IF_ERROR(require_device());

  CudaPerplexityResult res;
  res.device = device_line();
  LlamaCudaOptions o;
  o.max_batch = 1;
  o.max_seq_len = pp.ctx;
  // A window in chunks of up to 512 rows, every row's logits kept (prefill_logits).
  o.max_prefill_tokens = (int)std::min<int64_t>(pp.ctx, 512);
  o.prefill_all_logits = true;
  // The planner's verdict at the utilization (its ResourceExhausted names every term in bytes);
  // the runner itself takes one window's KV, not the rest of the budget.
  {
    FRUGAL_ASSIGN_OR_RETURN(const LlamaDims d, llama_dims(c));
    LlamaCudaOptions planned = o;
    planned.gpu_memory_utilization = params.gpu_memory_utilization;
    FRUGAL_ASSIGN_OR_RETURN(const LlamaCudaMemory m, plan_llama_cuda_memory(d, planned));
    (void)m;
  }
  const auto t0 = std::chrono::steady_clock::now();
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<LlamaCuda> g, upload_model(model, o));
  res.upload_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const LlamaCudaMemory& mem = g->memory();
  res.memory = "arena " + std::to_string(mem.total) + " bytes: weights " +
               std::to_string(mem.weights) + " + workspace " + std::to_string(mem.workspace) +
               " + KV " + std::to_string(mem.kv) + " (" + std::to_string(mem.kv_blocks) +
               " blocks: one window of " + std::to_string(pp.ctx) + ")";
  FRUGAL_ASSIGN_OR_RETURN(
      res.ppl,
      perplexity_from_logits(
          c.vocab_size, c.max_seq_len, tokens, pp,
          [&](std::span<const int32_t> win, int64_t start, int64_t n, std::span<float> logits) {
            return prefill_all_logits(*g, 0, win.data() + start, n, start, logits.data());
          },
          progress));
  return res;
}

}  // namespace frugal::cuda
