// Internals shared by the two decode-GEMV kernels (gemv.cu: a warp per row group, loads from
// global memory; gemv_stream.cu: weights streamed into shared memory by bulk async copies):
// the kernel arguments, the input/output modes, bf16 unpacking and rounding, and the fused
// RoPE + paged K/V write epilogue. Not a public header: ops.cuh is the interface.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "backend/cuda/model_ops.cuh"
#include "base/status.h"

namespace frugal::cuda::gemv_detail {

// Input modes: plain x, RMSNorm with weights, RMSNorm with unit weights (folded into W).
constexpr int kNormNone = 0, kNormWeighted = 1, kNormUnit = 2;
// Output modes (GemvOutput).
constexpr int kStore = 0, kAdd = 1, kSwiglu = 2, kRopeKv = 3;

struct KernelArgs {
  const uint16_t* w;
  const float* x;
  float* y;
  int64_t rows, cols;
  const float* norm_w;
  float eps;
  RopeKvWriteParams rk;  // kRopeKv only
  int prefetch_lines;    // warp-row kernel: 128-byte lines per row prefetched before the wait
  bool trigger;          // allow_dependent_launch() (warp-row: past the wait; stream: at start)
  int stream_stages = 0; // stream: ring depth (0: the kernel's default)
};

__device__ __forceinline__ void bf16x8_to_f32(const uint4 v, float* f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// Round to nearest even, NaN kept NaN (base/half.h f32_to_bf16; model_ops.cu's rule).
__device__ __forceinline__ uint16_t to_bf16_bits(float f) {
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

// Rows (a, b) of rotation pair `pair` of the fused [q|k|v] projection (V heads pair up too,
// unrotated).
__device__ __forceinline__ void rope_pair_rows(const RopeKvWriteParams& rk, int64_t pair,
                                               int64_t& ra, int64_t& rb) {
  const int half = rk.head_dim / 2;
  const int64_t h = pair / half;
  const int i = (int)(pair % half);
  ra = h * rk.head_dim + (rk.rope_half ? i : 2 * i);
  rb = h * rk.head_dim + (rk.rope_half ? i + half : 2 * i + 1);
}

// What the epilogue of pair `pair`, token t needs from memory, loaded before the weight loop
// so its latency hides behind the weight loads: position, cache block, cos/sin.
struct RopeLoads {
  int32_t pos, blk;
  float2 cs;
};

__device__ __forceinline__ RopeLoads rope_loads(const RopeKvWriteParams& rk, int64_t pair,
                                                int t) {
  const int half = rk.head_dim / 2;
  RopeLoads r;
  r.pos = rk.positions[t];
  const bool pos_ok = r.pos >= 0 && r.pos < rk.rope_positions;
  const int row_idx = rk.table_row >= 0 ? rk.table_row : t;
  r.blk = pos_ok ? rk.block_tables[(int64_t)row_idx * rk.max_blocks_per_seq +
                                   r.pos / rk.block_size]
                 : -1;
  r.cs = pos_ok ? rk.rope[(int64_t)r.pos * half + pair % half] : make_float2(NAN, NAN);
  return r;
}

// rope_kv_write's work on the values (a, b) of pair `pair` for token t.
__device__ __forceinline__ void rope_kv_store(const RopeKvWriteParams& rk, int64_t pair, int t,
                                              const RopeLoads& ld, float a, float b) {
  const int half = rk.head_dim / 2;
  const int h = (int)(pair / half);
  const int i = (int)(pair % half);
  const int ia = rk.rope_half ? i : 2 * i, ib = rk.rope_half ? i + half : 2 * i + 1;
  const bool pos_ok = ld.pos >= 0 && ld.pos < rk.rope_positions;
  const bool is_v = h >= rk.n_heads + rk.n_kv_heads;
  const float xa = is_v ? a : a * ld.cs.x - b * ld.cs.y;
  const float xb = is_v ? b : a * ld.cs.y + b * ld.cs.x;
  if (h < rk.n_heads) {
    float* q = rk.q_out + ((int64_t)t * rk.n_heads + h) * rk.head_dim;
    q[ia] = xa;
    q[ib] = xb;
    return;
  }
  if (!pos_ok || ld.blk < 0 || ld.blk >= rk.n_blocks) return;
  const int kvh = is_v ? h - rk.n_heads - rk.n_kv_heads : h - rk.n_heads;
  const int64_t off =
      (((int64_t)ld.blk * rk.block_size + ld.pos % rk.block_size) * rk.n_kv_heads + kvh) *
      rk.head_dim;
  uint16_t* cache = is_v ? rk.v_cache : rk.k_cache;
  cache[off + ia] = to_bf16_bits(xa);
  cache[off + ib] = to_bf16_bits(xb);
}

// The streaming kernel (gemv_stream.cu) for batch 1..8, input mode `norm`, output mode `out`;
// ctas_per_sm x SMs persistent blocks (clamped to what fits and to the work), a ring of
// a.stream_stages stages.
Status launch_stream(const KernelArgs& a, int norm, int out, int batch, cudaStream_t stream,
                     int sms, int ctas_per_sm);

}  // namespace frugal::cuda::gemv_detail
