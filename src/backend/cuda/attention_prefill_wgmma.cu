// Causal paged prefill attention on Hopper warpgroup MMA (sm_90a), head_dim 128, bf16 K/V.
// Same contract as the FlashAttention-2 kernel (attention.cuh, PagedPrefillParams).
//
// Block = 2 warpgroups x 64 query rows of one query head (128 rows); K/V tiles of kBN = 128
// positions gathered through the block table by cp.async (all 256 threads) into a shared-memory
// ring in the 128-byte-swizzled layout of wgmma.cuh. Per warpgroup:
//   S = Q K^T      wgmma m64n128k16 x 8, Q and K from shared memory (K-major descriptors)
//   online softmax on the S accumulators in registers (a row lives in one lane quad)
//   O += P V       wgmma m64n128k16 x 8, P re-packed from S as the register A operand, V from
//                  shared memory through a transposed (MN-major) descriptor
// The next tile's gather (block-table rows fetched a tile earlier) is issued while S runs.
// kOverlap (FlashAttention-3's intra-warpgroup pipelining, 3-stage ring): S of tile j and
// O += P_{j-1} V_{j-1} are issued back to back, and the softmax of tile j runs while the PV
// product is still on the tensor cores. Without it each product is waited for; kStages 2
// loads one tile ahead, 3 two tiles ahead.
// Causal: tiles past the block's last row are skipped, only the tiles crossing a warpgroup's
// diagonal are masked. Grid (n_heads, q tiles), longest tiles first (as the FA2 kernel).
// Measured on the H200 (dev/cuda/NOTES.md, prefill attn v5): 1.12-1.28x the FA2 kernel,
// 0.53x torch SDPA at 8k; the tensor pipe is busy ~32 % of the time (latency-bound: both
// warpgroups meet at one barrier per tile, and the per-thread gather needs a proxy fence).
#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "backend/cuda/attention_prefill_tile.cuh"
#include "backend/cuda/attention_prefill_wgmma.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/wgmma.cuh"

namespace frugal::cuda {

namespace {

using namespace pf;  // tile geometry and the shared device pieces (attention_prefill_tile.cuh)
constexpr int kThreads = 256;

// K/V ring depth: kOverlap needs tiles j - 1 and j resident plus one landing (3); without it,
// 2 (one tile ahead) or 3 (two ahead).
template <bool kOverlap, int kStages>
constexpr size_t smem_bytes() {  // + 1024: the base is rounded up to the swizzle period
  return 1024 + 2 * kHalfQ + (size_t)kStages * 2 * kTileKV;
}

// The device code exists in the sm_90a pass only (the compute_90 PTX pass compiles an empty
// kernel; see wgmma.cuh).
#if FRUGAL_WGMMA
constexpr int kRowsPerThread = kBN * 16 / kThreads;  // K/V rows (16 chunks each) per thread

// Per-thread constants of the K/V gather: thread tid copies 16-byte chunk tid % 16 of rows
// tid / 16 + 16 i (i < kRowsPerThread) of each tile.
struct Ctx {
  const PagedPrefillParams* p;
  int bs_shift, last_pos, tid;
  int kv_row;                 // elements per cache row (block, slot): n_kv_heads * 128
  const uint16_t* kb;         // k_cache + this KV head's column + this thread's chunk
  const uint16_t* vb;
  uint32_t soff;              // shared-memory offset of the thread's chunk in row tid / 16
};

// The cache rows (block * block_size + slot) of this thread's rows of tile kt: -1 past the
// chunk's last position, -2 for a table entry outside the pool. Fetched one tile ahead, so
// the table's load latency hides behind a tile of math.
__device__ __forceinline__ void fetch_rows(const Ctx& c, int kt, int32_t (&rows)[kRowsPerThread]) {
  const PagedPrefillParams& p = *c.p;
#pragma unroll
  for (int it = 0; it < kRowsPerThread; ++it) {
    const int kp = kt * kBN + (c.tid >> 4) + it * (kThreads / 16);
    int32_t row = -1;
    if (kp <= c.last_pos) {
      const int bi = c.bs_shift >= 0 ? kp >> c.bs_shift : kp / p.block_size;
      const int slot = c.bs_shift >= 0 ? kp & (p.block_size - 1) : kp - bi * p.block_size;
      const int32_t b = __ldg(p.block_table + bi);
      row = b >= 0 && b < p.n_blocks ? b * p.block_size + slot : -2;
    }
    rows[it] = row;
  }
}

// K/V rows [kt * kBN, kt * kBN + kBN) of this block's KV head -> shared memory (cp.async),
// given fetch_rows(kt). Past the chunk's last position: zeros (masked anyway; V must not be
// NaN garbage); a table entry outside the pool: NaN, which reaches the output (the FA2
// kernel's rule).
__device__ __forceinline__ void load_kv(const Ctx& c, const int32_t (&rows)[kRowsPerThread],
                                        unsigned char* sK, unsigned char* sV) {
#pragma unroll
  for (int it = 0; it < kRowsPerThread; ++it) {
    const uint32_t off = c.soff + it * (kThreads / 16) * 128;  // + 16 rows; same swizzle phase
    if (rows[it] >= 0) {
      const int64_t e = (int64_t)rows[it] * c.kv_row;
      ptx::cp_async16(ptx::smem_addr(sK + off), c.kb + e);
      ptx::cp_async16(ptx::smem_addr(sV + off), c.vb + e);
    } else {
      const uint32_t f = rows[it] == -2 ? 0xffffffffu : 0u;
      *reinterpret_cast<uint4*>(sK + off) = make_uint4(f, f, f, f);
      *reinterpret_cast<uint4*>(sV + off) = make_uint4(f, f, f, f);
    }
  }
}

#endif  // FRUGAL_WGMMA

template <bool kOverlap, int kStages>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_wgmma_kernel(PagedPrefillParams p, int bs_shift) {
#if FRUGAL_WGMMA  // else (the compute_90 PTX): empty; the host launches it on 9.x devices only
  constexpr int S = kStages;
  static_assert(!kOverlap || S == 3, "the overlapped loop needs 3 stages");
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (ptx::smem_addr(smem_raw) & 1023)) & 1023);
  unsigned char* sQ = smem;
  unsigned char* sKV = smem + 2 * kHalfQ;  // stage i: K at i * 2 * kTileKV, V right after
  const uint32_t aQ = ptx::smem_addr(sQ), aKV = ptx::smem_addr(sKV);

  const int h = blockIdx.x;
  const int t0 = (gridDim.y - 1 - blockIdx.y) * kBM;  // longest tiles first
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wgi = warp >> 2, wl = warp & 3, g = lane >> 2, tg = lane & 3;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  Ctx c;
  c.p = &p;
  c.bs_shift = bs_shift;
  c.last_pos = p.pos0 + min(t0 + kBM, p.n_tokens) - 1;
  c.tid = tid;
  c.kv_row = p.n_kv_heads * kD;
  c.kb = p.k_cache + (int64_t)kvh * kD + (tid & 15) * 8;
  c.vb = p.v_cache + (int64_t)kvh * kD + (tid & 15) * 8;
  c.soff = tile_off(kHalfKV, tid >> 4, tid & 15);
  const int n_tiles = c.last_pos / kBN + 1;

  // Prologue: tiles 0 .. P - 1 in flight (P = 1 with the overlap, else S - 1), one cp.async
  // group each (possibly empty, so group counts stay uniform).
  constexpr int P = kOverlap ? 1 : S - 1;
  int32_t blk[kRowsPerThread];  // the cache rows of the next tile to load
  fetch_rows(c, 0, blk);
#pragma unroll
  for (int t = 0; t < P; ++t) {
    if (t < n_tiles) {
      load_kv(c, blk, sKV + t * 2 * kTileKV, sKV + t * 2 * kTileKV + kTileKV);
      if (t + 1 < n_tiles) fetch_rows(c, t + 1, blk);
    }
    ptx::cp_async_commit();
  }

  // Q rows -> bf16 (scaled by scale * log2 e: base-2 logits), swizzled.
  const float qscale = (p.scale > 0.0f ? p.scale : rsqrtf((float)kD)) * kLog2e;
#pragma unroll 2
  for (int i = tid; i < kBM * 16; i += kThreads) {
    const int r = i >> 4, ch = i & 15;
    const int t = t0 + r;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (t < p.n_tokens) {
      const float4* src =
          reinterpret_cast<const float4*>(p.q + ((int64_t)t * p.n_heads + h) * kD + ch * 8);
      const float4 a = src[0], b = src[1];
      v = make_uint4(ptx::pack_bf16(a.x * qscale, a.y * qscale),
                     ptx::pack_bf16(a.z * qscale, a.w * qscale),
                     ptx::pack_bf16(b.x * qscale, b.y * qscale),
                     ptx::pack_bf16(b.z * qscale, b.w * qscale));
    }
    *reinterpret_cast<uint4*>(sQ + tile_off(kHalfQ, r, ch)) = v;
  }

  const uint32_t sq = aQ + wgi * 64 * 128;  // this warpgroup's 64 rows
  const int wg_min_pos = p.pos0 + t0 + wgi * 64;
  const int qpos_g = wg_min_pos + wl * 16 + g;              // this lane's first row's position

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, corr[2];
  float s[64];
  uint32_t pa[8][4];
#pragma unroll
  for (int k = 0; k < 8; ++k) pa[k][0] = pa[k][1] = pa[k][2] = pa[k][3] = 0u;
  if constexpr (kOverlap) {  // the first iteration's PV product reads stage S - 1's V: zeros
    unsigned char* v_last = sKV + (S - 1) * 2 * kTileKV + kTileKV;
    for (int i = tid; i < (int)(kTileKV / 16); i += kThreads)
      *reinterpret_cast<uint4*>(v_last + i * 16) = make_uint4(0, 0, 0, 0);
  }

  // Both warpgroups run every tile of the block (a tile past a warpgroup's last row is fully
  // masked: p = 0, corr = 1), so every wgmma issue .. wait pair is unconditional in the loop
  // body (ptxas serialises wgmma awaited on another path, C7520). The next tile's cp.async
  // gather is issued while this tile's S = Q K^T runs on the tensor cores.
  if constexpr (!kOverlap) {
    for (int kt = 0; kt < n_tiles; ++kt) {
      ptx::cp_async_wait<P - 1>();  // all but the newest P - 1 groups: tile kt has landed
      wg::fence_proxy_async();
      // tile kt (and Q) is visible to every thread; every warpgroup finished iteration kt - 1,
      // so its stage, (kt + P) % S, is free for tile kt + P
      __syncthreads();
      const uint32_t sk = aKV + (kt % S) * 2 * kTileKV;
      const int kp0 = kt * kBN;
      wg::fence();
      issue_s(s, sq, sk);
      wg::commit();
      if (kt + P < n_tiles) {
        unsigned char* nxt = sKV + ((kt + P) % S) * 2 * kTileKV;
        load_kv(c, blk, nxt, nxt + kTileKV);
        if (kt + P + 1 < n_tiles) fetch_rows(c, kt + P + 1, blk);
      }
      ptx::cp_async_commit();
      wg::wait<0>();
      wg::fence_regs(s);
      softmax_tile(s, m, l, corr, kp0 + kBN - 1 > wg_min_pos, qpos_g, kp0, tg);
      rescale(o, corr);
      pack_p(s, pa);
      wg::fence_regs(o);
      wg::fence();
      issue_pv(o, pa, sk + kTileKV);
      wg::commit();
      wg::wait<0>();
      wg::fence_regs(o);
    }
  } else {
    // Iteration kt: S of tile kt and O += P V of tile kt - 1, so tiles kt - 1 (its V) and kt
    // (its K) are resident while tile kt + 1 lands in the third stage.
    for (int kt = 0; kt < n_tiles; ++kt) {
      ptx::cp_async_wait<0>();  // tile kt (the only group in flight) has landed
      wg::fence_proxy_async();
      // tile kt is visible to every thread; every warpgroup finished iteration kt - 1, so
      // tile kt - 2's stage (its V read by that iteration's PV product) is free
      __syncthreads();
      const uint32_t sk = aKV + (kt % S) * 2 * kTileKV;
      const uint32_t sv = aKV + ((kt + S - 1) % S) * 2 * kTileKV + kTileKV;  // tile kt - 1
      wg::fence_regs(o);
      wg::fence();
      issue_s(s, sq, sk);
      wg::commit();
      issue_pv(o, pa, sv);  // kt = 0: P = 0 times the zeroed V of stage S - 1
      wg::commit();
      if (kt + 1 < n_tiles) {
        unsigned char* nxt = sKV + ((kt + 1) % S) * 2 * kTileKV;
        load_kv(c, blk, nxt, nxt + kTileKV);
        if (kt + 2 < n_tiles) fetch_rows(c, kt + 2, blk);
      }
      ptx::cp_async_commit();
      wg::wait<1>();  // S done; the PV product runs on during the softmax
      wg::fence_regs(s);
      const int kp0 = kt * kBN;
      softmax_tile(s, m, l, corr, kp0 + kBN - 1 > wg_min_pos, qpos_g, kp0, tg);
      wg::wait<0>();
      wg::fence_regs(o);
      rescale(o, corr);
      pack_p(s, pa);
    }
    // the last tile's PV product (its V is still resident: no load follows)
    wg::fence_regs(o);
    wg::fence();
    issue_pv(o, pa, aKV + ((n_tiles - 1) % S) * 2 * kTileKV + kTileKV);
    wg::commit();
    wg::wait<0>();
    wg::fence_regs(o);
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int t = t0 + wgi * 64 + wl * 16 + g + 8 * r;
    if (t < p.n_tokens) {
      const float inv = 1.0f / sum;
      float* dst = p.out + ((int64_t)t * p.n_heads + h) * kD + 2 * tg;
#pragma unroll
      for (int j = 0; j < 16; ++j)
        *reinterpret_cast<float2*>(dst + 8 * j) =
            make_float2(o[4 * j + 2 * r] * inv, o[4 * j + 2 * r + 1] * inv);
    }
  }
#endif
}

template <bool kOverlap, int kStages>
Status launch(const PagedPrefillParams& p, cudaStream_t stream) {
  constexpr size_t smem = smem_bytes<kOverlap, kStages>();
  int dev = 0;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  static thread_local int ready_dev = -1;  // this thread's device with the attribute set
  if (dev != ready_dev) {
    int major = 0;
    FRUGAL_CUDA_RETURN_IF_ERROR(
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    if (major != 9)
      return Unsupported("paged_attention_prefill_wgmma: needs a Hopper (sm_90a) device, not " +
                         std::to_string(major) + ".x");
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
        prefill_wgmma_kernel<kOverlap, kStages>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    ready_dev = dev;
  }
  const dim3 grid((unsigned)p.n_heads, (unsigned)((p.n_tokens + kBM - 1) / kBM));
  int bs_shift = -1;
  for (int sh = 0; sh < 31; ++sh)
    if (p.block_size == 1 << sh) bs_shift = sh;
  prefill_wgmma_kernel<kOverlap, kStages><<<grid, kThreads, smem, stream>>>(p, bs_shift);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("prefill_wgmma_kernel");
  return Status::Ok();
}

}  // namespace

Status paged_attention_prefill_wgmma(const PagedPrefillParams& p, int variant,
                                     cudaStream_t stream) {
  if (p.head_dim != kD)
    return Unsupported("paged_attention_prefill_wgmma: head_dim " + std::to_string(p.head_dim) +
                       " (128 only)");
  if (p.n_tokens == 0) return Status::Ok();
  if (variant >= kWgmmaTma) {
    bool launched = false;
    const Status st = paged_attention_prefill_tma(p, variant, stream, &launched);
    // a driver without tensor maps, or one refusing these, is Unsupported: the cp.async kernel
    if (!st.ok() && st.code() != StatusCode::kUnsupported) return st;
    if (launched) return Status::Ok();
    return launch<false, 2>(p, stream);  // no tensor map for this layout
  }
  if (variant == kWgmmaOverlap) return launch<true, 3>(p, stream);
  if (variant == kWgmmaDeep) return launch<false, 3>(p, stream);
  return launch<false, 2>(p, stream);
}

}  // namespace frugal::cuda
