// Internal device code: one warp's share of paged decode attention on tensor cores, used by the
// split kernel (attention_decode_mma.cu) and the cluster kernel (attention_decode_cluster.cu).
// The layout of q, S, P and O in the m16n8k16 fragments (three bf16 terms of q and P in the
// rows a query group of <= 8 heads leaves free) is described in attention_decode_mma.cu.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/mma.cuh"

namespace frugal::cuda::decode_mma {

using namespace ptx;

constexpr int kWarps = 4;      // warps per block of the split kernel
constexpr int kTP = 16;        // positions per warp tile
constexpr float kLog2e = 1.4426950408889634f;

// (a, b) = hi + mid + lo as packed bf16 pairs, each the bf16 rounding of the remainder so far
// (the remainders are exact in float): float's 24 bits of (a, b).
__device__ __forceinline__ void split3_bf16(float a, float b, uint32_t& hi, uint32_t& mid,
                                            uint32_t& lo) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  const float2 hf = __bfloat1622float2(h);
  const float ra = a - hf.x, rb = b - hf.y;
  const __nv_bfloat162 m = __floats2bfloat162_rn(ra, rb);
  const float2 mf = __bfloat1622float2(m);
  hi = *reinterpret_cast<const uint32_t*>(&h);
  mid = *reinterpret_cast<const uint32_t*>(&m);
  lo = pack_bf16(ra - mf.x, rb - mf.y);
}

// The A-fragment registers of (a, b) for row g (r0) and row g + 8 (r8), and the extra
// fragment's row g (x0; its row g + 8 is zero). T3: lane groups 0..3 get (hi, mid), lane
// groups 4..7 (upper) get (lo, 0), no extra fragment; else (hi, mid) and the extra gets lo.
template <bool T3>
__device__ __forceinline__ void a_terms(float a, float b, bool upper, uint32_t& r0, uint32_t& r8,
                                        uint32_t& x0) {
  uint32_t hi, mid, lo;
  split3_bf16(a, b, hi, mid, lo);
  r0 = T3 && upper ? lo : hi;
  r8 = T3 && upper ? 0u : mid;
  x0 = lo;
}

// Per-lane roles: lane group g = lane / 4 holds head hq of the query group (T3: g & 3; lane
// groups 4..7 hold the lo terms, `upper`), tg = lane % 4.
struct Lane {
  int lane, g, tg, hq;
  bool upper;
};
template <bool T3>
__device__ __forceinline__ Lane lane_roles(int lane) {
  Lane r;
  r.lane = lane;
  r.g = lane >> 2;
  r.tg = lane & 3;
  r.hq = T3 ? (r.g & 3) : r.g;
  r.upper = T3 && r.g >= 4;
  return r;
}

// The lane's elements of q (head hq of KV head kvh's group; dimensions d0, d0 + 1, d0 + 8,
// d0 + 9 of each 16, d0 = 2 tg); heads >= G zero. Issued early: split_q, which
// waits for them, runs after the first K/V tiles are issued.
template <int D>
__device__ __forceinline__ void load_q_raw(const PagedDecodeParams& p, int seq, int kvh, int G,
                                           const Lane& ln, float2 (&x)[D / 16][2]) {
  const bool has = ln.hq < G;
  const float* qrow = p.q + ((int64_t)seq * p.n_heads + kvh * G + min(ln.hq, G - 1)) * D;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const int d0 = kk * 16 + 2 * ln.tg;
    // scalar loads: q need not be 8-byte aligned (check_params asks alignment of the caches)
    x[kk][0] = has ? make_float2(qrow[d0], qrow[d0 + 1]) : make_float2(0.0f, 0.0f);
    x[kk][1] = has ? make_float2(qrow[d0 + 8], qrow[d0 + 9]) : make_float2(0.0f, 0.0f);
  }
}

// q scaled by scale * log2 e as bf16 A fragments (rows g in [0]/[2], g + 8 in [1]/[3]): T3:
// hi / mid (lane groups 0..3) or lo / 0 (4..7), else hi / mid in qf and lo in ql.
template <int D, bool T3>
__device__ __forceinline__ void split_q(const PagedDecodeParams& p, const float2 (&x)[D / 16][2],
                                        const Lane& ln, uint32_t (&qf)[D / 16][4],
                                        uint32_t (&ql)[T3 ? 1 : D / 16][4]) {
  const float qscale = (p.scale > 0.0f ? p.scale : rsqrtf((float)D)) * kLog2e;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const float x0 = x[kk][0].x * qscale, x1 = x[kk][0].y * qscale;
    const float x8 = x[kk][1].x * qscale, x9 = x[kk][1].y * qscale;
    uint32_t lo01, lo89;
    a_terms<T3>(x0, x1, ln.upper, qf[kk][0], qf[kk][1], lo01);
    a_terms<T3>(x8, x9, ln.upper, qf[kk][2], qf[kk][3], lo89);
    if (!T3) {
      ql[T3 ? 0 : kk][0] = lo01;
      ql[T3 ? 0 : kk][1] = 0u;
      ql[T3 ? 0 : kk][2] = lo89;
      ql[T3 ? 0 : kk][3] = 0u;
    }
  }
}

// Gathers the K and V rows of positions pos0 .. pos0 + 15 of KV head kvh into one pipeline stage
// (sK, then the V tile right after it; [16][D] bf16, swizzled): cp.async for rows < end in a
// valid block, zeros for the rest (a bad block sets `bad`: the caller makes the output NaN).
// one_block: the 16 positions lie in one cache block, `tile_blk` (block_size a power of two
// >= 16); else row_block(bi) gives each row's table entry.
template <int D, class RowBlock, bool kFastPath = true>
__device__ __forceinline__ void load_tile(const PagedDecodeParams& p, unsigned char* sK,
                                          int pos0, int end, int kvh, int lane, bool one_block,
                                          int32_t tile_blk, int bs_shift, RowBlock row_block,
                                          bool& bad) {
  constexpr int CH = D / 8;            // 16-byte chunks per row
  constexpr int TILE = kTP * D * 2;    // bytes of one K (or V) tile
  constexpr int RSTEP = 32 / CH;       // rows between a lane's rows in the tile load
  constexpr int RPL = kTP / RSTEP;     // rows per lane per tile
  unsigned char* sV = sK + TILE;
  const int bs = p.block_size;
  const int64_t kv_row = (int64_t)p.n_kv_heads * D;  // elements per cache row (block, slot)
  const int64_t kv_col = (int64_t)kvh * D + (lane % CH) * 8;
  const int r0 = lane / CH;
  int64_t base = 0;
  bool base_ok = true;
  if (one_block) {
    base_ok = tile_blk >= 0 && tile_blk < p.n_blocks;
    base = ((int64_t)tile_blk * bs + (pos0 & (bs - 1))) * kv_row + kv_col;
    if (kFastPath && base_ok && pos0 + kTP <= end) {
      // Every row valid, in one block: rows at a fixed stride, no per-row checks (the general
      // loop below costs ~400 instructions per tile and warp; at batch 1 the issue of a warp's
      // first tiles was half of the split kernel's instructions, ncu 2026-11-30).
      const uint16_t* kp = p.k_cache + base + (int64_t)r0 * kv_row;
      const uint16_t* vp = p.v_cache + base + (int64_t)r0 * kv_row;
      const int64_t step = (int64_t)RSTEP * kv_row;
      const uint32_t sk = smem_addr(sK);
#pragma unroll
      for (int k = 0; k < RPL; ++k) {
        const uint32_t off = swz<D>(r0 + k * RSTEP, lane % CH);
        cp_async16(sk + off, kp + k * step);
        cp_async16(sk + TILE + off, vp + k * step);
      }
      return;
    }
  }
#pragma unroll
  for (int k = 0; k < RPL; ++k) {
    const int r = r0 + k * RSTEP, pos = pos0 + r;
    const uint32_t off = swz<D>(r, lane % CH);
    bool ok = pos < end;
    int64_t e = 0;
    if (ok) {
      if (one_block) {
        ok = base_ok;
        e = base + r * kv_row;
      } else {
        const int bi = bs_shift >= 0 ? pos >> bs_shift : pos / bs;
        const int slot = pos - bi * bs;
        const int32_t blk = row_block(bi);
        ok = blk >= 0 && blk < p.n_blocks;
        e = ((int64_t)blk * bs + slot) * kv_row + kv_col;
      }
      bad |= !ok;
    }
    if (ok) {
      cp_async16(smem_addr(sK + off), p.k_cache + e);
      cp_async16(smem_addr(sV + off), p.v_cache + e);
    } else {  // past the end (masked) or a bad block (the output becomes NaN): zeros
      *reinterpret_cast<uint4*>(sK + off) = make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(sV + off) = make_uint4(0, 0, 0, 0);
    }
  }
}

// One 16-position tile (positions pos0.., those >= end masked): S = q K^T, the online softmax
// step on (m, l) and O += P V, all in registers. The tile must hold a position < end.
template <int D, bool T3>
__device__ __forceinline__ void attend_tile(const unsigned char* sK, const uint32_t (&qf)[D / 16][4],
                                            const uint32_t (&ql)[T3 ? 1 : D / 16][4], int pos0,
                                            int end, const Lane& ln, float (&o)[D / 8][4],
                                            float& m, float& l) {
  constexpr int TILE = kTP * D * 2;
  const unsigned char* sV = sK + TILE;
  const int lane = ln.lane, tg = ln.tg;
  float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t b[4];
    ldsm_x4(smem_addr(sK + swz<D>((lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1))),
            b);
    mma_bf16(s[0], qf[kk], b[0], b[1]);
    mma_bf16(s[1], qf[kk], b[2], b[3]);
    if (!T3) {
      mma_bf16(s[0], ql[T3 ? 0 : kk], b[0], b[1]);
      mma_bf16(s[1], ql[T3 ? 0 : kk], b[2], b[3]);
    }
  }
#pragma unroll
  for (int j = 0; j < 2; ++j) {  // head hq's scores: the sum of its term rows
    s[j][0] += s[j][2];
    s[j][1] += s[j][3];
    if (T3) {  // a + b in one lane group, b + a in the other: the same float
      s[j][0] += __shfl_xor_sync(0xffffffffu, s[j][0], 16);
      s[j][1] += __shfl_xor_sync(0xffffffffu, s[j][1], 16);
    }
  }
  if (pos0 + kTP > end) {  // the last tile: mask positions past the end
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (pos0 + 8 * j + 2 * tg + e >= end) s[j][e] = -INFINITY;
  }
  float mx = fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1]));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  mx = fmaxf(mx, m);  // finite: every tile has a valid position
  const float corr = ex2(m - mx);
  m = mx;
  const float p00 = ex2(s[0][0] - mx), p01 = ex2(s[0][1] - mx);
  const float p10 = ex2(s[1][0] - mx), p11 = ex2(s[1][1] - mx);
  l = l * corr + (p00 + p01) + (p10 + p11);
  if (__any_sync(0xffffffffu, corr != 1.0f)) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[j][0] *= corr;
      o[j][1] *= corr;
      o[j][2] *= corr;
      o[j][3] *= corr;
    }
  }
  uint32_t pa[4], pl[4] = {0u, 0u, 0u, 0u};
  a_terms<T3>(p00, p01, ln.upper, pa[0], pa[1], pl[0]);
  a_terms<T3>(p10, p11, ln.upper, pa[2], pa[3], pl[2]);
#pragma unroll
  for (int dp = 0; dp < D / 16; ++dp) {
    uint32_t b[4];
    ldsm_x4_trans(
        smem_addr(sV + swz<D>((lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4))), b);
    mma_bf16(o[2 * dp], pa, b[0], b[1]);
    mma_bf16(o[2 * dp + 1], pa, b[2], b[3]);
    if (!T3) {
      mma_bf16(o[2 * dp], pl, b[0], b[1]);
      mma_bf16(o[2 * dp + 1], pl, b[2], b[3]);
    }
  }
}

// Two 16-position tiles in one online-softmax step (32 positions; both must hold a position
// < end; tile t's K at sK[t], its V right after it): the four S chains of both tiles are
// independent mma chains issued together, then one max / rescale / sum over 32 scores and
// both tiles' P V products. For a warp whose tiles are all in shared memory at once (batch 1,
// short splits: 2 tiles per warp), one serial chain (S -> shuffles -> max -> exp -> P V) instead
// of two. Same arithmetic per score as attend_tile (the sums of l and O in another order).
template <int D, bool T3>
__device__ __forceinline__ void attend_tile_pair(const unsigned char* const (&sK)[2],
                                                 const uint32_t (&qf)[D / 16][4],
                                                 const uint32_t (&ql)[T3 ? 1 : D / 16][4],
                                                 const int (&pos0)[2], int end, const Lane& ln,
                                                 float (&o)[D / 8][4], float& m, float& l) {
  constexpr int TILE = kTP * D * 2;
  const int lane = ln.lane, tg = ln.tg;
  float s[4][4];  // [2 t + j]: tile t, positions 8 j ..
#pragma unroll
  for (int j = 0; j < 4; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      uint32_t b[4];
      ldsm_x4(smem_addr(sK[t] +
                        swz<D>((lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1))),
              b);
      mma_bf16(s[2 * t], qf[kk], b[0], b[1]);
      mma_bf16(s[2 * t + 1], qf[kk], b[2], b[3]);
      if (!T3) {
        mma_bf16(s[2 * t], ql[T3 ? 0 : kk], b[0], b[1]);
        mma_bf16(s[2 * t + 1], ql[T3 ? 0 : kk], b[2], b[3]);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {  // head hq's scores: the sum of its term rows
    s[j][0] += s[j][2];
    s[j][1] += s[j][3];
    if (T3) {
      s[j][0] += __shfl_xor_sync(0xffffffffu, s[j][0], 16);
      s[j][1] += __shfl_xor_sync(0xffffffffu, s[j][1], 16);
    }
  }
#pragma unroll
  for (int t = 0; t < 2; ++t) {
    if (pos0[t] + kTP > end) {  // mask positions past the end
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          if (pos0[t] + 8 * j + 2 * tg + e >= end) s[2 * t + j][e] = -INFINITY;
    }
  }
  float mx = fmaxf(fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1])),
                   fmaxf(fmaxf(s[2][0], s[2][1]), fmaxf(s[3][0], s[3][1])));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  mx = fmaxf(mx, m);  // finite: both tiles have a valid position
  const float corr = ex2(m - mx);
  m = mx;
  float pr[4][2];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    pr[j][0] = ex2(s[j][0] - mx);
    pr[j][1] = ex2(s[j][1] - mx);
  }
  l = l * corr + ((pr[0][0] + pr[0][1]) + (pr[1][0] + pr[1][1])) +
      ((pr[2][0] + pr[2][1]) + (pr[3][0] + pr[3][1]));
  if (__any_sync(0xffffffffu, corr != 1.0f)) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[j][0] *= corr;
      o[j][1] *= corr;
      o[j][2] *= corr;
      o[j][3] *= corr;
    }
  }
  uint32_t pa[2][4], pl[2][4];
#pragma unroll
  for (int t = 0; t < 2; ++t) {
    pl[t][1] = pl[t][3] = 0u;
    a_terms<T3>(pr[2 * t][0], pr[2 * t][1], ln.upper, pa[t][0], pa[t][1], pl[t][0]);
    a_terms<T3>(pr[2 * t + 1][0], pr[2 * t + 1][1], ln.upper, pa[t][2], pa[t][3], pl[t][2]);
  }
#pragma unroll
  for (int dp = 0; dp < D / 16; ++dp) {
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      uint32_t b[4];
      ldsm_x4_trans(smem_addr(sK[t] + TILE +
                              swz<D>((lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4))),
                    b);
      mma_bf16(o[2 * dp], pa[t], b[0], b[1]);
      mma_bf16(o[2 * dp + 1], pa[t], b[2], b[3]);
      if (!T3) {
        mma_bf16(o[2 * dp], pl[t], b[0], b[1]);
        mma_bf16(o[2 * dp + 1], pl[t], b[2], b[3]);
      }
    }
  }
}

// After the warp's last tile: l summed over the lane quad, and the warp's O rows of head hq
// (lane group hq's rows + lane group 4 + hq's under T3) with (m, l) written to the block's
// scratch: so[warp][hq][D] floats, sm_m / sm_l[warp][hq].
template <int D, bool T3>
__device__ __forceinline__ void warp_to_smem(float (&o)[D / 8][4], float m, float l, int G,
                                             int warp, const Lane& ln, float* so,
                                             float (*sm_m)[8], float (*sm_l)[8]) {
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (T3) {  // head hq's output: lane group hq's rows (hi, mid) + lane group 4 + hq's (lo)
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[j][0] += o[j][2];
      o[j][1] += o[j][3];
      o[j][0] += __shfl_xor_sync(0xffffffffu, o[j][0], 16);
      o[j][1] += __shfl_xor_sync(0xffffffffu, o[j][1], 16);
      o[j][2] = o[j][3] = 0.0f;
    }
  }
  if (ln.hq < G && !ln.upper) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      *reinterpret_cast<float2*>(so + ((size_t)warp * 8 + ln.hq) * D + 8 * j + 2 * ln.tg) =
          make_float2(o[j][0] + o[j][2], o[j][1] + o[j][3]);
    if (ln.tg == 0) {
      sm_m[warp][ln.hq] = m;
      sm_l[warp][ln.hq] = l;
    }
  }
}

// The block's (max, sum, unnormalised output) of head hg, dimension d, from its warps' scratch
// (a warp without tiles has m = -inf and weighs 0; all idle: M = -inf, L = A = 0).
template <int D, int NWARPS = kWarps>
__device__ __forceinline__ void merge_warps(const float* so, const float (*sm_m)[8],
                                            const float (*sm_l)[8], int hg, int d, float& M,
                                            float& L, float& A) {
  M = -INFINITY;
#pragma unroll
  for (int w = 0; w < NWARPS; ++w) M = fmaxf(M, sm_m[w][hg]);
  L = 0.0f;
  A = 0.0f;
#pragma unroll
  for (int w = 0; w < NWARPS; ++w) {
    const float wt = sm_m[w][hg] == -INFINITY ? 0.0f : exp2f(sm_m[w][hg] - M);  // idle warp
    L += sm_l[w][hg] * wt;
    A += wt == 0.0f ? 0.0f : so[((size_t)w * 8 + hg) * D + d] * wt;
  }
}

// merge_warps' weights once per head instead of per element (one thread per head hg): the
// block's max M and sum L to ml[hg], and warp w's weight 2^(m_w - M) (0 for an idle warp) in
// place of sm_m[w][hg]. Then out[hg][d] = sum_w so[w][hg][d] * weight, in warp order: the same
// floats as merge_warps.
template <int NWARPS>
__device__ __forceinline__ void merge_weights(float (*sm_m)[8], const float (*sm_l)[8], int hg,
                                              float2* ml) {
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < NWARPS; ++w) M = fmaxf(M, sm_m[w][hg]);
  float L = 0.0f;
#pragma unroll
  for (int w = 0; w < NWARPS; ++w) {
    const float wt = sm_m[w][hg] == -INFINITY ? 0.0f : exp2f(sm_m[w][hg] - M);  // idle warp
    L += sm_l[w][hg] * wt;
    sm_m[w][hg] = wt;
  }
  ml[hg] = make_float2(M, L);
}

}  // namespace frugal::cuda::decode_mma
