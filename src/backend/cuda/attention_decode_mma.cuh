// Internal: the tensor-core split kernel of paged decode attention (attention_decode_mma.cu),
// dispatched by paged_attention_decode (attention.cu). It writes the same partials (workspace
// layout of attention.cu) as the CUDA-core split kernel; the merge kernel combines them.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"
#include "base/status.h"

namespace frugal::cuda {

// Blocks of the kernel for this head_dim (64 or 128) and query group resident per multiprocessor.
Result<int> paged_decode_mma_blocks_per_sm(int head_dim, int group);

// Launches the split kernel over grid (plan.n_splits, n_kv_heads, n_seqs). p was checked by
// plan_paged_decode (head_dim 64/128, group <= 8, 16-byte aligned caches).
Status launch_paged_decode_mma(const PagedDecodeParams& p, const PagedDecodePlan& plan,
                               cudaStream_t stream);

}  // namespace frugal::cuda
