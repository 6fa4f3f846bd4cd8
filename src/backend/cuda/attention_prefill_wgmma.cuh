// Hopper warpgroup-MMA causal prefill attention (attention_prefill_wgmma.cu), head_dim 128:
// the PagedPrefillParams contract of paged_attention_prefill (attention.cuh). Called by
// paged_attention_prefill when p.kernel selects it (or kPrefillAuto picks it); the caller
// validates the parameters.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"
#include "base/status.h"

namespace frugal::cuda {

// variant: kWgmmaPlain (2-stage K/V ring, one tile ahead), kWgmmaDeep (3 stages, two tiles
// ahead), kWgmmaOverlap (3 stages, the softmax of tile j during O += P V of tile j - 1).
constexpr int kWgmmaPlain = 0, kWgmmaDeep = 1, kWgmmaOverlap = 2;
Status paged_attention_prefill_wgmma(const PagedPrefillParams& p, int variant,
                                     cudaStream_t stream);

}  // namespace frugal::cuda
