// The Hopper copy engine (TMA): tensor maps over global bf16 tensors, encoded on the host through
// the driver's cuTensorMapEncodeTiled (reached with cudaGetDriverEntryPointByVersion, so no
// -lcuda link), and the one-thread tile load cp.async.bulk.tensor that completes on an mbarrier
// (mbarrier.cuh). A kernel takes a map as a `const __grid_constant__ CUtensorMap` parameter.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "base/status.h"

namespace frugal::cuda::tma {

// A 4-D bf16 tensor, dims[0] innermost and contiguous; strides_bytes[i] is the step of dims[i + 1]
// (multiples of 16, < 2^40); box[i] elements per dim (1..256; box[0] * 2 <= 128 with the
// 128-byte swizzle, which writes box row r's 16-byte chunk c at r * 128 + ((c ^ (r % 8)) << 4),
// the layout of wgmma.cuh). The global address must be 16-byte aligned. Errors (a driver
// without the entry point, parameters the driver rejects) are returned, never thrown.
struct Map4dParams {
  const void* base = nullptr;
  uint64_t dims[4] = {0, 0, 0, 0};
  uint64_t strides_bytes[3] = {0, 0, 0};
  uint32_t box[4] = {0, 0, 0, 0};
};
Status encode_bf16_4d_sw128(const Map4dParams& p, CUtensorMap* out);

// The same for a 5-D tensor (rank 5, the same rules). Strides need not grow with the
// dimension: a box may visit dimensions in an order other than their memory order (e.g. both
// 64-column halves of a row, stride 128 bytes, as a dimension outside the rows).
struct Map5dParams {
  const void* base = nullptr;
  uint64_t dims[5] = {0, 0, 0, 0, 0};
  uint64_t strides_bytes[4] = {0, 0, 0, 0};
  uint32_t box[5] = {0, 0, 0, 0, 0};
};
Status encode_bf16_5d_sw128(const Map5dParams& p, CUtensorMap* out);

#if defined(__CUDA_ARCH__)
// One box at coordinates {c0 (innermost), c1, c2, c3} -> shared memory at dst (1024-byte aligned
// for the swizzle), its bytes counted on the mbarrier at `bar` (announced with expect_tx).
__device__ __forceinline__ void load_4d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                        int c0, int c1, int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}
__device__ __forceinline__ void load_5d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                        int c0, int c1, int c2, int c3, int c4) {
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5, %6, %7}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4)
      : "memory");
}
__device__ __forceinline__ void prefetch_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
#endif

}  // namespace frugal::cuda::tma
