#include "model/cuda/llama_cuda_logits.h"

namespace frugal::cuda {

Status prefill_all_logits(LlamaCuda& g, int slot, const int32_t* tokens, int64_t n, int64_t pos,
                          float* logits) {
  if (!logits) return InvalidArgument("prefill_all_logits: null logits");
  if (!tokens || n < 1) return InvalidArgument("prefill_all_logits: no tokens");
  if (g.options().prefill_all_logits) return g.prefill_logits(slot, tokens, n, pos, logits);
  const int64_t vocab = g.dims().vocab;
  for (int64_t i = 0; i < n; ++i)
    FRUGAL_RETURN_IF_ERROR(g.prefill(slot, tokens + i, 1, pos + i, logits + i * vocab).status());
  return Status::Ok();
}

}  // namespace frugal::cuda
