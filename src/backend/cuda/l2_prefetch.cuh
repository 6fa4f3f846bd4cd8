// L2 prefetch of a read-only byte range spread over the blocks of a grid, fire-and-forget: a
// kernel whose own work leaves DRAM nearly idle (decode attention at batch 1 over a short
// context) pulls the next kernel's weights into L2 meanwhile (issue 7; dev/cuda/NOTES.md,
// "attn v9"). Nothing waits for the prefetches and nothing reads their result, so the kernel's
// output cannot change; the slices stay inside [base, base + bytes rounded down to 16).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FRUGAL_L2P_HD __host__ __device__
#else
#define FRUGAL_L2P_HD
#endif

namespace frugal::cuda {

// A thread's unit: one bulk prefetch of up to this many bytes (a multiple of 16).
constexpr uint64_t kL2PrefetchChunk = 4096;

struct L2PrefetchSlice {
  uint64_t begin = 0, end = 0;  // byte offsets, multiples of 16, begin <= end
};

// Block b of n: a contiguous run of whole chunks of [0, bytes & ~15) (the last block's may end
// on a 16-byte boundary inside a chunk). The slices of b = 0..n-1 are disjoint and cover it.
FRUGAL_L2P_HD inline L2PrefetchSlice l2_prefetch_slice(uint64_t bytes, uint64_t b, uint64_t n) {
  const uint64_t usable = bytes & ~uint64_t{15};
  const uint64_t chunks = (usable + kL2PrefetchChunk - 1) / kL2PrefetchChunk;
  const uint64_t per = n ? (chunks + n - 1) / n : 0;
  L2PrefetchSlice s;
  s.begin = b * per * kL2PrefetchChunk;
  s.end = (b + 1) * per * kL2PrefetchChunk;
  if (s.begin > usable) s.begin = usable;
  if (s.end > usable) s.end = usable;
  return s;
}

#if defined(__CUDACC__)
// This block's slice of [base, base + bytes): one `cp.async.bulk.prefetch.L2` per chunk and
// thread (lines = false), or `prefetch.global.L2` per 128-byte line (lines = true; also the
// path below sm_90). base must be 16-byte aligned (plan_paged_decode checks it).
__device__ __forceinline__ void l2_prefetch_block(const void* base, uint64_t bytes, bool lines) {
  const uint64_t nb = (uint64_t)gridDim.x * gridDim.y * gridDim.z;
  const uint64_t b = ((uint64_t)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const L2PrefetchSlice s = l2_prefetch_slice(bytes, b, nb);
  const char* p = static_cast<const char*>(base);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (!lines) {
    for (uint64_t off = s.begin + threadIdx.x * kL2PrefetchChunk; off < s.end;
         off += (uint64_t)blockDim.x * kL2PrefetchChunk) {
      const uint32_t n = (uint32_t)(s.end - off < kL2PrefetchChunk ? s.end - off : kL2PrefetchChunk);
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p + off), "r"(n) : "memory");
    }
    return;
  }
#endif
  (void)lines;
  for (uint64_t off = s.begin + threadIdx.x * 128ull; off < s.end; off += (uint64_t)blockDim.x * 128)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p + off));
}
#endif

}  // namespace frugal::cuda
