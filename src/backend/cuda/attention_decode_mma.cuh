// Internal: the tensor-core kernels of paged decode attention, dispatched by
// paged_attention_decode (attention.cu). The split kernel (attention_decode_mma.cu) writes the
// same partials (workspace layout of attention.cu) as the CUDA-core split kernel, which the
// merge kernel combines; the cluster kernel (attention_decode_cluster.cu) merges inside a
// thread-block cluster and writes the output itself.
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

// Clusters of cluster_size (1..16) blocks of the cluster kernel that fit on the device at once
// (cudaOccupancyMaxActiveClusters; 0 when that size cannot run), cached per process.
Result<int> paged_decode_cluster_active(int head_dim, int group, int cluster_size);

// Warps per block of the cluster kernel (each warp one 16-position tile at a time).
constexpr int kDecodeClusterWarps = 8;

// Launches the cluster kernel over grid (plan.cluster_size, n_kv_heads, n_seqs), one cluster per
// (sequence, KV head); no workspace. p was checked by plan_paged_decode.
Status launch_paged_decode_cluster(const PagedDecodeParams& p, const PagedDecodePlan& plan,
                                   cudaStream_t stream);

}  // namespace frugal::cuda
