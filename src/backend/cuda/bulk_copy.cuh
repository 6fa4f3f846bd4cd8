// Bulk async copies global -> shared memory completing on an mbarrier (sm_90: cp.async.bulk,
// 1-D, no tensor map; the barrier operations are in mbarrier.cuh). A block of one CTA is its
// own cluster, so the shared::cluster destination is the CTA's own memory.
#pragma once

#include <cstdint>

namespace frugal::cuda::bulk {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

// An L2 policy for data read once (weights streamed past the cache).
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t p;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
  return p;
}

// bytes (a multiple of 16; both addresses 16-byte aligned) from global src to shared dst;
// completes `bytes` transactions on bar.
__device__ __forceinline__ void copy_g2s(void* dst, const void* src, uint32_t bytes,
                                         uint64_t* bar, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1], %2, [%3], %4;" ::"r"(smem_u32(dst)),
      "l"(src), "r"(bytes), "r"(smem_u32(bar)), "l"(policy)
      : "memory");
}

}  // namespace frugal::cuda::bulk
