// Device pieces shared by the Hopper prefill-attention kernels (attention_prefill_wgmma.cu: the
// cp.async kernel; attention_prefill_fa3.cu: TMA + warp specialisation): the tile geometry, the
// 128-byte-swizzled tile layout of wgmma.cuh, S = Q K^T and O += P V as wgmma m64n128k16 x 8,
// the online softmax on the accumulators and P re-packed as the register A operand.
// Include from .cu files only, inside `#if FRUGAL_WGMMA` for the device functions.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/mma.cuh"
#include "backend/cuda/wgmma.cuh"

namespace frugal::cuda::pf {

constexpr int kD = 128;                    // head_dim
constexpr int kBM = 128;                   // query rows per block (2 warpgroups x 64)
constexpr int kBN = 128;                   // positions per K/V tile
constexpr uint32_t kHalfQ = kBM * 128;     // bytes of one 64-column half of the Q tile
constexpr uint32_t kHalfKV = kBN * 128;    // ... of a K or V tile
constexpr uint32_t kTileKV = 2 * kHalfKV;  // one K (or V) tile
constexpr float kLog2e = 1.4426950408889634f;
// The grouped K/V tile layout (attention_prefill_fa3.cu's kGroup kernels): [16 groups of 8
// positions][2 halves of 64 columns][8 rows][128 bytes], swizzled like the rest: position r's
// half h starts at (r / 8) * kGroupBytes + h * 1024 + (r % 8) * 128. One TMA box of a 16-row
// block then holds both halves (4 KB, 2 groups) where the half-split layout needs two boxes.
constexpr uint32_t kGroupBytes = 2048;

#if FRUGAL_WGMMA
// Byte offset of 16-byte chunk c (0..15) of row r in a [rows][128] bf16 tile (wgmma.cuh layout).
__device__ __forceinline__ uint32_t tile_off(uint32_t half_bytes, int r, int c) {
  return (c >> 3) * half_bytes + r * 128 + (((c & 7) ^ (r & 7)) << 4);
}

// Online softmax of one 64 x 128 S tile held as wgmma accumulators: lane (g = lane / 4,
// tg = lane % 4) of warp w holds rows 16w + g (r = 0) and 16w + g + 8 (r = 1), columns
// 8j + 2tg + {0, 1} in s[4j + 2r + {0, 1}]. Masks positions past each row's own position when
// `mask`; leaves 2^(s - max) in s and the factor the old O must be scaled by in corr.
__device__ __forceinline__ void softmax_tile(float (&s)[64], float (&m)[2], float (&l)[2],
                                             float (&corr)[2], bool mask, int qpos_g, int kp0,
                                             int tg) {
  if (mask) {
#pragma unroll
    for (int j = 0; j < 16; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (kp0 + 8 * j + 2 * tg + (e & 1) > qpos_g + (e >> 1) * 8) s[4 * j + e] = -INFINITY;
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = m[r];
#pragma unroll
    for (int j = 0; j < 16; ++j) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * r], s[4 * j + 2 * r + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float base = mx == -INFINITY ? 0.0f : mx;  // a row with nothing seen yet
    corr[r] = ptx::ex2(m[r] - base);
    m[r] = mx;
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      s[4 * j + 2 * r] = ptx::ex2(s[4 * j + 2 * r] - base);
      s[4 * j + 2 * r + 1] = ptx::ex2(s[4 * j + 2 * r + 1] - base);
      sum += s[4 * j + 2 * r] + s[4 * j + 2 * r + 1];
    }
    l[r] = l[r] * corr[r] + sum;
  }
}

__device__ __forceinline__ void rescale(float (&o)[64], const float (&corr)[2]) {
  if (__any_sync(0xffffffffu, corr[0] != 1.0f || corr[1] != 1.0f)) {  // rare once settled
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      o[4 * j] *= corr[0];
      o[4 * j + 1] *= corr[0];
      o[4 * j + 2] *= corr[1];
      o[4 * j + 3] *= corr[1];
    }
  }
}

// P (bf16) as wgmma register A operands, one per k16 step: the accumulator layout of columns
// 16k .. 16k + 15 is the A layout of that step.
__device__ __forceinline__ void pack_p(const float (&s)[64], uint32_t (&pa)[8][4]) {
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    pa[k][0] = ptx::pack_bf16(s[8 * k], s[8 * k + 1]);
    pa[k][1] = ptx::pack_bf16(s[8 * k + 2], s[8 * k + 3]);
    pa[k][2] = ptx::pack_bf16(s[8 * k + 4], s[8 * k + 5]);
    pa[k][3] = ptx::pack_bf16(s[8 * k + 6], s[8 * k + 7]);
  }
}

__device__ __forceinline__ void issue_s(float (&s)[64], uint32_t sq, uint32_t sk) {
#pragma unroll
  for (int k = 0; k < 8; ++k)
    wg::mma_ss_m64n128(s, wg::desc_sw128(sq + (k >> 2) * kHalfQ + (k & 3) * 32, 16, 1024),
                       wg::desc_sw128(sk + (k >> 2) * kHalfKV + (k & 3) * 32, 16, 1024), k > 0);
}

__device__ __forceinline__ void issue_pv(float (&o)[64], const uint32_t (&pa)[8][4],
                                         uint32_t sv) {
#pragma unroll
  for (int k = 0; k < 8; ++k)
    wg::mma_rs_m64n128_tb(o, pa[k], wg::desc_sw128(sv + k * 16 * 128, kHalfKV, 1024));
}

// The same two products over the grouped K/V layout (kGroupBytes): K's 8-row groups along N
// are kGroupBytes apart and its second 64-column half 1024 bytes on; V's k16 step is two
// groups, its N halves 1024 bytes apart (leading offset), its 8-row groups kGroupBytes
// (stride offset).
__device__ __forceinline__ void issue_s_grouped(float (&s)[64], uint32_t sq, uint32_t sk) {
#pragma unroll
  for (int k = 0; k < 8; ++k)
    wg::mma_ss_m64n128(s, wg::desc_sw128(sq + (k >> 2) * kHalfQ + (k & 3) * 32, 16, 1024),
                       wg::desc_sw128(sk + (k >> 2) * 1024 + (k & 3) * 32, 16, kGroupBytes),
                       k > 0);
}

__device__ __forceinline__ void issue_pv_grouped(float (&o)[64], const uint32_t (&pa)[8][4],
                                                 uint32_t sv) {
#pragma unroll
  for (int k = 0; k < 8; ++k)
    wg::mma_rs_m64n128_tb(o, pa[k], wg::desc_sw128(sv + k * 2 * kGroupBytes, 1024, kGroupBytes));
}

#endif  // FRUGAL_WGMMA

}  // namespace frugal::cuda::pf
