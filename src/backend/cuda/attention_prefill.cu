// Causal paged prefill attention, FlashAttention-2 style (see attention.cuh, PagedPrefillParams).
//
// Block = WARPS x MR x 16 query rows of one query head; K/V tiles of kBK positions are gathered through
// the block table with cp.async into a 2-stage shared-memory pipeline (rows XOR-swizzled in
// 16-byte chunks so ldmatrix reads are bank-conflict free). Per warp, everything between the
// loads stays in registers: Q as mma A-fragments (loaded once), S = Q K^T as m16n8k16 float
// accumulators, the online softmax on those accumulators (a row lives in one lane quad: max via
// two xor-shuffles, the sum kept per lane and reduced once at the end), P re-packed from the S
// accumulators into bf16 A-fragments (the C layout of two n8 tiles is the A layout of one k16
// step), O accumulated in float. Causal: tiles above a warp's last row are skipped, only the
// tiles crossing its diagonal are masked. Grid (n_heads, q tiles): the query heads of one KV
// head are adjacent block indices, so their K/V reads meet in L2; the longest tiles start first.
#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_prefill_wgmma.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/mma.cuh"

namespace frugal::cuda {

namespace {

constexpr int kBK = 64;  // positions per K/V tile
constexpr float kLog2e = 1.4426950408889634f;

using namespace ptx;  // mma.cuh: ldmatrix, mma.sync, cp.async, ex2, swizzle

template <int D, int WARPS, int MR>
constexpr size_t smem_bytes() {
  return (size_t)WARPS * MR * 16 * D * 2 + 4 * (size_t)kBK * D * 2;  // Q + 2 stages x (K, V)
}

// WARPS warps x MR row blocks of 16 query rows each. MR = 1: Q fragments live in registers for
// the whole kernel. MR = 2 (FlashAttention-2's 4 warps x 32 rows): each K/V fragment read from
// shared memory feeds two mma (half the ldmatrix traffic per flop); Q fragments are re-read from
// shared memory per k-step to stay within 255 registers.
template <int D, int WARPS, int MR>
__global__ void __launch_bounds__(WARPS * 32, 1)
    prefill_fa2_kernel(PagedPrefillParams p, int bs_shift) {
  constexpr int BQ = WARPS * MR * 16, NT = WARPS * 32, CH = D / 8, TILE = kBK * D * 2;
  constexpr bool kQRegs = MR == 1;
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sQ = smem;
  unsigned char* sKV = smem + BQ * D * 2;  // stage s: K at s * 2 * TILE, V right after

  const int h = blockIdx.x;
  const int t0 = (gridDim.y - 1 - blockIdx.y) * BQ;  // longest tiles first
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tg = lane & 3;
  const int last_pos = p.pos0 + min(t0 + BQ, p.n_tokens) - 1;
  const int n_tiles = last_pos / kBK + 1;
  const int64_t kv_row = (int64_t)p.n_kv_heads * D;  // elements per cache row (block, slot)
  const int64_t kv_col = (int64_t)kvh * D;

  auto load_tile = [&](int kt, int stage) {
    unsigned char* sK = sKV + stage * 2 * TILE;
    unsigned char* sV = sK + TILE;
#pragma unroll
    for (int i = tid; i < kBK * CH; i += NT) {
      const int r = i / CH, c = i % CH;
      const int kp = kt * kBK + r;
      const uint32_t off = swz<D>(r, c);
      // block_size a power of two (the usual case): shifts instead of integer division
      const int bi = bs_shift >= 0 ? kp >> bs_shift : kp / p.block_size;
      const int slot = bs_shift >= 0 ? kp & (p.block_size - 1) : kp - bi * p.block_size;
      const int32_t blk = kp <= last_pos ? p.block_table[bi] : -1;
      if (kp <= last_pos && blk >= 0 && blk < p.n_blocks) {
        const int64_t e = (int64_t)(blk * p.block_size + slot) * kv_row + kv_col + c * 8;
        cp_async16(smem_addr(sK + off), p.k_cache + e);
        cp_async16(smem_addr(sV + off), p.v_cache + e);
      } else {
        // past the chunk's last position: zeros (masked anyway; V must not be NaN garbage);
        // a table entry outside the pool: NaN, which reaches the output
        const uint32_t f = kp <= last_pos ? 0xffffffffu : 0u;
        *reinterpret_cast<uint4*>(sK + off) = make_uint4(f, f, f, f);
        *reinterpret_cast<uint4*>(sV + off) = make_uint4(f, f, f, f);
      }
    }
  };

  load_tile(0, 0);
  cp_async_commit();

  // Q rows of this block -> bf16 (scaled by scale * log2 e: base-2 logits), swizzled.
  const float qscale = (p.scale > 0.0f ? p.scale : rsqrtf((float)D)) * kLog2e;
  for (int i = tid; i < BQ * CH; i += NT) {
    const int r = i / CH, c = i % CH;
    const int t = t0 + r;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (t < p.n_tokens) {
      const float4* src =
          reinterpret_cast<const float4*>(p.q + ((int64_t)t * p.n_heads + h) * D + c * 8);
      const float4 a = src[0], b = src[1];
      v = make_uint4(pack_bf16(a.x * qscale, a.y * qscale), pack_bf16(a.z * qscale, a.w * qscale),
                     pack_bf16(b.x * qscale, b.y * qscale), pack_bf16(b.z * qscale, b.w * qscale));
    }
    *reinterpret_cast<uint4*>(sQ + swz<D>(r, c)) = v;
  }
  __syncthreads();
  const int wrow = warp * MR * 16;  // the warp's first row in the block
  uint32_t qf[kQRegs ? D / 16 : 1][4];
  if constexpr (kQRegs) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      ldsm_x4(smem_addr(sQ + swz<D>(wrow + (lane & 15), 2 * kk + (lane >> 4))), qf[kk]);
  }

  float o[MR][D / 8][4];
#pragma unroll
  for (int rb = 0; rb < MR; ++rb)
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[rb][j][0] = o[rb][j][1] = o[rb][j][2] = o[rb][j][3] = 0.0f;
  float m[MR][2], l[MR][2];
#pragma unroll
  for (int rb = 0; rb < MR; ++rb) m[rb][0] = m[rb][1] = -INFINITY, l[rb][0] = l[rb][1] = 0.0f;
  const int warp_min_pos = p.pos0 + t0 + wrow;  // positions of the warp's first/last rows
  const int warp_max_pos = warp_min_pos + MR * 16 - 1;

  for (int kt = 0; kt < n_tiles; ++kt) {
    if (kt + 1 < n_tiles) {
      load_tile(kt + 1, (kt + 1) & 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // tile kt is in shared memory for every thread
    const int kp0 = kt * kBK;
    if (kp0 <= warp_max_pos) {  // else fully masked for this warp
      const unsigned char* sK = sKV + (kt & 1) * 2 * TILE;
      const unsigned char* sV = sK + TILE;
      float s[MR][kBK / 8][4];
#pragma unroll
      for (int rb = 0; rb < MR; ++rb)
#pragma unroll
        for (int j = 0; j < kBK / 8; ++j)
          s[rb][j][0] = s[rb][j][1] = s[rb][j][2] = s[rb][j][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[MR][4];
#pragma unroll
        for (int rb = 0; rb < MR; ++rb) {
          if constexpr (kQRegs) {
#pragma unroll
            for (int e = 0; e < 4; ++e) qa[rb][e] = qf[kk][e];
          } else {
            ldsm_x4(smem_addr(sQ + swz<D>(wrow + rb * 16 + (lane & 15), 2 * kk + (lane >> 4))),
                    qa[rb]);
          }
        }
#pragma unroll
        for (int np = 0; np < kBK / 16; ++np) {
          uint32_t b[4];
          ldsm_x4(smem_addr(sK + swz<D>(np * 16 + (lane & 7) + ((lane >> 4) << 3),
                                        2 * kk + ((lane >> 3) & 1))),
                  b);
#pragma unroll
          for (int rb = 0; rb < MR; ++rb) {
            mma_bf16(s[rb][2 * np], qa[rb], b[0], b[1]);
            mma_bf16(s[rb][2 * np + 1], qa[rb], b[2], b[3]);
          }
        }
      }
#pragma unroll
      for (int rb = 0; rb < MR; ++rb) {
        const int rb_min_pos = warp_min_pos + rb * 16;
        if (kp0 + kBK - 1 > rb_min_pos) {  // the tile crosses this row block's diagonal
          const int qpos = rb_min_pos + g;  // this lane's rows: qpos and qpos + 8
#pragma unroll
          for (int j = 0; j < kBK / 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e)
              if (kp0 + 8 * j + 2 * tg + (e & 1) > qpos + (e >> 1) * 8) s[rb][j][e] = -INFINITY;
        }
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float mx = m[rb][r];
#pragma unroll
          for (int j = 0; j < kBK / 8; ++j)
            mx = fmaxf(mx, fmaxf(s[rb][j][2 * r], s[rb][j][2 * r + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float base = mx == -INFINITY ? 0.0f : mx;  // a row with nothing seen yet
          const float corr = ex2(m[rb][r] - base);
          m[rb][r] = mx;
          float sum = 0.0f;
#pragma unroll
          for (int j = 0; j < kBK / 8; ++j) {
            s[rb][j][2 * r] = ex2(s[rb][j][2 * r] - base);
            s[rb][j][2 * r + 1] = ex2(s[rb][j][2 * r + 1] - base);
            sum += s[rb][j][2 * r] + s[rb][j][2 * r + 1];
          }
          l[rb][r] = l[rb][r] * corr + sum;
          if (__any_sync(0xffffffffu, corr != 1.0f)) {  // rare once the row max has settled
#pragma unroll
            for (int j = 0; j < D / 8; ++j) {
              o[rb][j][2 * r] *= corr;
              o[rb][j][2 * r + 1] *= corr;
            }
          }
        }
      }
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) {
        uint32_t a[MR][4];
#pragma unroll
        for (int rb = 0; rb < MR; ++rb) {
          a[rb][0] = pack_bf16(s[rb][2 * kk][0], s[rb][2 * kk][1]);
          a[rb][1] = pack_bf16(s[rb][2 * kk][2], s[rb][2 * kk][3]);
          a[rb][2] = pack_bf16(s[rb][2 * kk + 1][0], s[rb][2 * kk + 1][1]);
          a[rb][3] = pack_bf16(s[rb][2 * kk + 1][2], s[rb][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t b[4];
          ldsm_x4_trans(smem_addr(sV + swz<D>(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3),
                                              2 * dp + (lane >> 4))),
                        b);
#pragma unroll
          for (int rb = 0; rb < MR; ++rb) {
            mma_bf16(o[rb][2 * dp], a[rb], b[0], b[1]);
            mma_bf16(o[rb][2 * dp + 1], a[rb], b[2], b[3]);
          }
        }
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
  }

#pragma unroll
  for (int rb = 0; rb < MR; ++rb)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = l[rb][r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int t = t0 + wrow + rb * 16 + g + 8 * r;
      if (t < p.n_tokens) {
        const float inv = 1.0f / sum;
        float* dst = p.out + ((int64_t)t * p.n_heads + h) * D + 2 * tg;
#pragma unroll
        for (int j = 0; j < D / 8; ++j)
          *reinterpret_cast<float2*>(dst + 8 * j) =
              make_float2(o[rb][j][2 * r] * inv, o[rb][j][2 * r + 1] * inv);
      }
    }
}

template <int D, int WARPS, int MR>
Status launch(const PagedPrefillParams& p, cudaStream_t stream) {
  constexpr size_t smem = smem_bytes<D, WARPS, MR>();
  constexpr int BQ = WARPS * MR * 16;
  if (smem > 48 * 1024)
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(prefill_fa2_kernel<D, WARPS, MR>,
                                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                     (int)smem));
  const dim3 grid((unsigned)p.n_heads, (unsigned)((p.n_tokens + BQ - 1) / BQ));
  int bs_shift = -1;
  for (int sh = 0; sh < 31; ++sh)
    if (p.block_size == 1 << sh) bs_shift = sh;
  prefill_fa2_kernel<D, WARPS, MR><<<grid, WARPS * 32, smem, stream>>>(p, bs_shift);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("prefill_fa2_kernel");
  return Status::Ok();
}

template <int D>
Status launch_d(const PagedPrefillParams& p, cudaStream_t stream) {
  int config = p.config;
  if (config == 0)  // measured on the H200 (dev/cuda/NOTES.md, prefill attn v2/v3): 8 x 16 rows
                    // wins up to ~1k tokens at 32 heads, 4 x 32 rows beyond
    config = p.n_tokens <= 64                                        ? 1
             : (int64_t)p.n_heads * ((p.n_tokens + 127) / 128) >= 384 ? 3
                                                                     : 2;
  if (config == 1) return launch<D, 4, 1>(p, stream);
  if (config == 2) return launch<D, 8, 1>(p, stream);
  return launch<D, 4, 2>(p, stream);
}

thread_local int t_prefill_kernel = kPrefillAuto;

}  // namespace

void set_prefill_attention_kernel(int kernel) { t_prefill_kernel = kernel; }
int prefill_attention_kernel() { return t_prefill_kernel; }

Status paged_attention_prefill(const PagedPrefillParams& p, cudaStream_t stream) {
  const std::string w = "paged_attention_prefill";
  if (!p.q || !p.out || !p.k_cache || !p.v_cache || !p.block_table)
    return InvalidArgument(w + ": null pointer");
  if (p.n_tokens < 0 || p.pos0 < 0 || p.n_heads < 1 || p.n_kv_heads < 1 || p.block_size < 1 ||
      p.n_blocks < 1)
    return InvalidArgument(w + ": bad sizes");
  if (p.n_heads % p.n_kv_heads != 0)
    return InvalidArgument(w + ": n_heads " + std::to_string(p.n_heads) +
                           " is not a multiple of n_kv_heads " + std::to_string(p.n_kv_heads));
  if (p.config < 0 || p.config > 3)
    return InvalidArgument(w + ": config " + std::to_string(p.config) + " (0..3)");
  if ((reinterpret_cast<uintptr_t>(p.k_cache) | reinterpret_cast<uintptr_t>(p.v_cache) |
       reinterpret_cast<uintptr_t>(p.q) | reinterpret_cast<uintptr_t>(p.out)) % 16)
    return InvalidArgument(w + ": q, out and the caches must be 16-byte aligned");
  if (p.kernel < kPrefillAuto || p.kernel > kPrefillWgmmaFa3GroupedDeep)
    return InvalidArgument(w + ": kernel " + std::to_string(p.kernel) + " (0..10)");
  if (p.kernel >= kPrefillWgmma && p.head_dim != 128)
    return Unsupported(w + ": the wgmma kernel needs head_dim 128, not " +
                       std::to_string(p.head_dim));
  if (p.n_tokens == 0) return Status::Ok();
  int kernel = p.kernel == kPrefillAuto ? t_prefill_kernel : p.kernel;
  // Measured rule (dev/cuda/NOTES.md, prefill attn v5 / v6, H200): at head_dim 128 the wgmma
  // kernel beat the FA2 kernel at every length from 512 to 8k tokens in the same call
  // (1.12-1.28x), and the FA3-structured kernel (TMA, warp-specialised, ping-pong) beat the
  // wgmma kernel at every length in the same call (v6c: block size 16 1.42-1.69x, 128
  // 1.39-1.93x; the whole 8B prefill 1.07x at 8k); it runs the wgmma kernel where the layout
  // allows no tensor map. Its grouped-box version (v7) beat it at block size 16 at 1k-8k in
  // the same call (shuffled table 1.05-1.15x, contiguous 1.02-1.16x) and tied at 32-128.
  // Chunks of <= 64 tokens (not measured) and a forced FA2 tile config stay on FA2.
  if (kernel == kPrefillAuto)
    kernel = p.head_dim == 128 && p.config == 0 && p.n_tokens > 64 ? kPrefillWgmmaFa3Grouped
                                                                   : kPrefillFa2;
  if (kernel >= kPrefillWgmma && p.head_dim == 128)
    return paged_attention_prefill_wgmma(p,
                                         kernel == kPrefillWgmmaOverlap      ? kWgmmaOverlap
                                         : kernel == kPrefillWgmmaDeep       ? kWgmmaDeep
                                         : kernel == kPrefillWgmmaTma        ? kWgmmaTma
                                         : kernel == kPrefillWgmmaTmaOverlap ? kWgmmaTmaOverlap
                                         : kernel == kPrefillWgmmaFa3        ? kWgmmaTmaPingPong
                                         : kernel == kPrefillWgmmaFa3Deep    ? kWgmmaTmaPingPong3
                                         : kernel == kPrefillWgmmaFa3Grouped ? kWgmmaTmaGrouped
                                         : kernel == kPrefillWgmmaFa3GroupedDeep
                                             ? kWgmmaTmaGrouped3
                                                                             : kWgmmaPlain,
                                         stream);
  if (p.head_dim == 64) return launch_d<64>(p, stream);
  if (p.head_dim == 128) return launch_d<128>(p, stream);
  return Unsupported(w + ": head_dim " + std::to_string(p.head_dim) + " (64 or 128)");
}

}  // namespace frugal::cuda
