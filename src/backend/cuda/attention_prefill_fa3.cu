// Causal paged prefill attention on Hopper with FlashAttention-3's structure (sm_90a), head_dim
// 128, bf16 K/V: the math of attention_prefill_wgmma.cu (2 consumer warpgroups x 64 query rows,
// K/V tiles of 128 positions, S = Q K^T and O += P V by wgmma m64n128k16, online softmax on the
// accumulators), fed differently:
//  - TMA: K and V reach shared memory through the copy engine. One tensor map per cache
//    [n_blocks][block_size][n_kv][128] bf16 with box (64 columns, 1 head, R rows, 1 block),
//    R = min(block_size, 128), and the 128-byte swizzle the wgmma descriptors read; a tile is
//    128 / R boxes per 64-column half, lane i of the producer warp reading box i's block index
//    from the table and issuing its copies (one thread issuing all 16 boxes of a 16-row-block
//    tile in a chain cost ~40 % at 8k). Completion through mbarriers with the byte count (no
//    per-thread gather, no proxy fence).
//  - Warp specialisation: 3 warpgroups (384 threads). Warpgroup 0 is the producer (registers
//    lowered with setmaxnreg; one warp runs the K/V ring of kStages = 2 or 3 stages: full /
//    empty mbarriers per stage, K and V separately, so with 2 stages the K of tile j + 1 loads
//    once S of tile j - 1 is done and its V once P V of tile j - 1 is done, one tile ahead of
//    the overlapped loop); warpgroups 1 and 2 are consumers (registers
//    raised) that wait on `full`, compute, and arrive on `empty` (every consumer thread).
//  - kOverlap: FA3's intra-warpgroup pipelining (S of tile j and P V of tile j - 1 issued
//    together, the softmax of tile j while P V runs).
//  - kPingPong (with kOverlap): the two consumer warpgroups take turns issuing their GEMMs
//    through two named barriers, so one's GEMMs run while the other does its softmax.
// Positions past the chunk's last one (tiles read whole blocks): the K rows are masked; the V
// rows of the last tile are zeroed by the producer after they land (uninitialised cache slots
// may hold NaN bits, and 0 * NaN = NaN in P V). A table entry outside the pool: block 0 is read
// instead and the block's output is NaN (the cp.async kernel's rule: NaN K/V reach every row).
//  - kGroup (kWgmmaTmaGrouped*, the default): the K/V tiles laid out as 16 groups of 8
//    positions x 2 halves x 8 rows (pf::kGroupBytes), so one box of a 5-D tensor map holds
//    both 64-column halves of a block (8 boxes per K or V tile at block size 16 instead of 16);
//    a tile whose blocks are consecutive in the table goes as one 32 KB box; K and V are issued
//    by two producer warps.
// Used when the layout allows a tensor map (block_size a power of two >= 8, n_blocks < 2^31);
// otherwise paged_attention_prefill_wgmma runs the cp.async kernel.
// Measured on the H200 (dev/cuda/NOTES.md, prefill attn v6 / v7): 32 q / 8 KV heads, block
// size 16 shuffled, T 512 .. 8k, two calls: half-split boxes 101-107 / 222-232 / 336-337 /
// 449-452 / 522-523 TFLOP/s, grouped 100-108 / 230-245 / 364-369 / 500-504 / 597-602 =
// 1.03-1.06x torch SDPA at 8k in the same calls (the half-split kernel 0.89-0.93x).
#include <cuda.h>
#include <cuda_bf16.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/attention_prefill_tile.cuh"
#include "backend/cuda/attention_prefill_wgmma.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/mbarrier.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/tma.cuh"
#include "backend/cuda/wgmma.cuh"

namespace frugal::cuda {

namespace {

using namespace pf;
constexpr int kThreadsWs = 384;  // producer warpgroup + 2 consumer warpgroups
constexpr int kMaxStages = 3;    // K/V ring depth: 2 (one tile ahead) or 3 (two ahead)

template <int kStages>
constexpr size_t smem_bytes_ws() {  // + 1024: the base is rounded up to the swizzle period
  return 1024 + 2 * kHalfQ + (size_t)kStages * 2 * kTileKV;
}

struct Barriers {
  uint64_t full_k[kMaxStages], full_v[kMaxStages], empty_k[kMaxStages], empty_v[kMaxStages];
  uint64_t vfix;  // the last tile's V lands here first (the producer zeroes its tail rows)
  int bad;        // a block-table entry outside the pool was read
};

#if FRUGAL_WGMMA

constexpr int kConsumers = 256;
// Named barriers: 1 + w: consumer warpgroup w's Q tile is written; 3 + w: warpgroup w's turn
// to issue its GEMMs (ping-pong).
constexpr int kBarQ = 1, kBarTurn = 3;

__device__ __forceinline__ uint32_t bar_addr(const uint64_t& b) { return ptx::smem_addr(&b); }

struct ProducerArgs {
  const CUtensorMap* tk;
  const CUtensorMap* tv;
  const CUtensorMap* tk_run;  // grouped layout: one box per whole 128-position tile
  const CUtensorMap* tv_run;
  const int32_t* table;
  int64_t n_blocks;
  int bs_shift, box_rows, kvh, last_pos, n_tiles;
  bool runs;     // grouped layout: one box per tile where its blocks are consecutive
  uint32_t aKV;  // shared address of stage 0's K tile
};

// The (block, slot) coordinates of box i of tile kt; positions past last_pos read block 0
// (masked / zeroed later), an entry outside the pool reads block 0 and marks the output bad.
__device__ __forceinline__ void box_coords(const ProducerArgs& a, Barriers& sb, int kt, int i,
                                           int& blk, int& slot) {
  const int pos = kt * kBN + i * a.box_rows;
  blk = 0;
  slot = 0;
  if (pos > a.last_pos) return;
  const int bi = pos >> a.bs_shift;
  slot = pos & ((1 << a.bs_shift) - 1);
  const int32_t b = __ldg(a.table + bi);
  if (b < 0 || (int64_t)b >= a.n_blocks) {
    *reinterpret_cast<volatile int*>(&sb.bad) = 1;
    return;
  }
  blk = b;
}

// One tile (K or V) of 128 positions: 128 / R boxes per 64-column half, on barrier `bar`.
// Lane i of the warp reads box i's table entry and issues its two copies (no serial chain of
// table loads and copies in one thread).
__device__ __forceinline__ void load_tile(const ProducerArgs& a, Barriers& sb,
                                          const CUtensorMap* map, uint32_t dst, uint32_t bar,
                                          int kt, int lane) {
  if (lane == 0) mbar::arrive_expect_tx(bar, kTileKV);
  __syncwarp();
  if (lane < kBN / a.box_rows) {
    int blk, slot;
    box_coords(a, sb, kt, lane, blk, slot);
    const uint32_t off = (uint32_t)(lane * a.box_rows * 128);
    tma::load_4d(dst + off, map, bar, 0, a.kvh, slot, blk);
    tma::load_4d(dst + kHalfKV + off, map, bar, 64, a.kvh, slot, blk);
  }
}

// Warp 0 of the producer warpgroup: the K/V ring by TMA (one lane per box); the whole warp
// zeroes the last tile's V rows past last_pos.
template <int S>
__device__ void produce(const ProducerArgs& a, Barriers& sb, unsigned char* sKV, int lane) {
  for (int kt = 0; kt < a.n_tiles; ++kt) {
    const int st = kt % S;
    const uint32_t par = ((kt / S) + 1) & 1;  // the consumers' release of tile kt - S
    const uint32_t k_dst = a.aKV + st * 2 * kTileKV, v_dst = k_dst + kTileKV;
    if (kt >= S) mbar::wait(bar_addr(sb.empty_k[st]), par);
    load_tile(a, sb, a.tk, k_dst, bar_addr(sb.full_k[st]), kt, lane);
    if (kt >= S) mbar::wait(bar_addr(sb.empty_v[st]), par);
    const int tail = a.last_pos + 1 - kt * kBN;  // rows of this tile at or before last_pos
    if (tail >= kBN) {
      load_tile(a, sb, a.tv, v_dst, bar_addr(sb.full_v[st]), kt, lane);
    } else {  // the last tile, with rows past last_pos
      load_tile(a, sb, a.tv, v_dst, bar_addr(sb.vfix), kt, lane);
      mbar::wait(bar_addr(sb.vfix), 0);
      unsigned char* v = sKV + st * 2 * kTileKV + kTileKV;
      for (int i = tail * 8 + lane; i < kBN * 8; i += 32) {  // 8 x 16 bytes per half row
        const int r = i >> 3, c = i & 7;
        const uint4 z = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(v + r * 128 + c * 16) = z;
        *reinterpret_cast<uint4*>(v + kHalfKV + r * 128 + c * 16) = z;
      }
      wg::fence_proxy_async();  // the zeros, before the tensor cores read the tile
      __syncwarp();
      if (lane == 0) mbar::arrive(bar_addr(sb.full_v[st]));
    }
  }
}

// Grouped layout (kGroup): box i of tile kt is R = box_rows positions of one block (R <=
// block_size), both halves, at group coordinate block * (block_size / 8) + slot / 8 (tensor
// map dims: 64 columns, 8 rows, 2 halves, KV head, groups of 8 positions). Lane i reads box
// i's table entry; when a.runs and the tile's boxes all lie before last_pos and their blocks
// are consecutive (a run), lane 0 issues the whole tile as one box of 128 positions instead.
__device__ __forceinline__ void load_tile_grouped(const ProducerArgs& a, Barriers& sb,
                                                  const CUtensorMap* map,
                                                  const CUtensorMap* run_map, uint32_t dst,
                                                  uint32_t bar, int kt, int lane) {
  const int nb = kBN / a.box_rows;
  const int pos = kt * kBN + lane * a.box_rows;
  const bool live = lane < nb && pos <= a.last_pos;
  int32_t b = 0;
  bool bad = false;
  if (live) {
    b = __ldg(a.table + (pos >> a.bs_shift));
    if (b < 0 || (int64_t)b >= a.n_blocks) {
      bad = true;
      b = 0;
    }
  }
  const int32_t b0 = __shfl_sync(0xffffffffu, b, 0);
  const bool run =
      a.runs && nb > 1 &&
      __all_sync(0xffffffffu, lane >= nb || (live && !bad &&
                                             b == b0 + ((lane * a.box_rows) >> a.bs_shift)));
  const bool any_bad = __any_sync(0xffffffffu, bad);
  const int grp = live ? (b << (a.bs_shift - 3)) + ((pos & ((1 << a.bs_shift) - 1)) >> 3) : 0;
  if (lane == 0) {
    if (any_bad) *reinterpret_cast<volatile int*>(&sb.bad) = 1;  // released by the arrive
    mbar::arrive_expect_tx(bar, kTileKV);
  }
  __syncwarp();
  if (run) {
    if (lane == 0) tma::load_5d(dst, run_map, bar, 0, 0, 0, a.kvh, grp);
  } else if (lane < nb) {
    tma::load_5d(dst + (uint32_t)(lane * a.box_rows * 256), map, bar, 0, 0, 0, a.kvh, grp);
  }
}

// Grouped layout: warp 0 of the producer warpgroup runs the K ring, warp 1 the V ring (K of
// tile j + 1 and V of tile j issue independently); warp 1 zeroes the last tile's V rows past
// last_pos.
template <int S>
__device__ void produce_grouped(const ProducerArgs& a, Barriers& sb, unsigned char* sKV,
                                int warp, int lane) {
  for (int kt = 0; kt < a.n_tiles; ++kt) {
    const int st = kt % S;
    const uint32_t par = ((kt / S) + 1) & 1;  // the consumers' release of tile kt - S
    const uint32_t k_dst = a.aKV + st * 2 * kTileKV, v_dst = k_dst + kTileKV;
    if (warp == 0) {
      if (kt >= S) mbar::wait(bar_addr(sb.empty_k[st]), par);
      load_tile_grouped(a, sb, a.tk, a.tk_run, k_dst, bar_addr(sb.full_k[st]), kt, lane);
      continue;
    }
    if (kt >= S) mbar::wait(bar_addr(sb.empty_v[st]), par);
    const int tail = a.last_pos + 1 - kt * kBN;  // rows of this tile at or before last_pos
    if (tail >= kBN) {
      load_tile_grouped(a, sb, a.tv, a.tv_run, v_dst, bar_addr(sb.full_v[st]), kt, lane);
    } else {  // the last tile, with rows past last_pos
      load_tile_grouped(a, sb, a.tv, a.tv_run, v_dst, bar_addr(sb.vfix), kt, lane);
      mbar::wait(bar_addr(sb.vfix), 0);
      unsigned char* v = sKV + st * 2 * kTileKV + kTileKV;
      for (int i = tail * 8 + lane; i < kBN * 8; i += 32) {  // 8 x 16 bytes per half row
        const int r = i >> 3, c = i & 7;
        unsigned char* row = v + (r >> 3) * kGroupBytes + (r & 7) * 128 + c * 16;
        const uint4 z = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(row) = z;
        *reinterpret_cast<uint4*>(row + 1024) = z;
      }
      wg::fence_proxy_async();  // the zeros, before the tensor cores read the tile
      __syncwarp();
      if (lane == 0) mbar::arrive(bar_addr(sb.full_v[st]));
    }
  }
}

// S = Q K^T and O += P V over either K/V layout.
template <bool kGroup>
__device__ __forceinline__ void gemm_s(float (&s)[64], uint32_t sq, uint32_t sk) {
  if constexpr (kGroup) issue_s_grouped(s, sq, sk);
  else issue_s(s, sq, sk);
}
template <bool kGroup>
__device__ __forceinline__ void gemm_pv(float (&o)[64], const uint32_t (&pa)[8][4], uint32_t sv) {
  if constexpr (kGroup) issue_pv_grouped(o, pa, sv);
  else issue_pv(o, pa, sv);
}

template <bool kOverlap, bool kPingPong, int S, bool kGroup>
__device__ __forceinline__ void consume(const PagedPrefillParams& p, Barriers& sb,
                                        unsigned char* sQ, uint32_t aQ, uint32_t aKV, int t0,
                                        int h, int n_tiles, int ctid) {
  const int wgi = ctid >> 7, lt = ctid & 127;
  const int wl = lt >> 5, lane = lt & 31, g = lane >> 2, tg = lane & 3;

  // This warpgroup's 64 Q rows -> bf16 (scaled by scale * log2 e: base-2 logits), swizzled.
  const float qscale = (p.scale > 0.0f ? p.scale : rsqrtf((float)kD)) * kLog2e;
#pragma unroll 2
  for (int i = lt; i < 64 * 16; i += 128) {
    const int r = wgi * 64 + (i >> 4), ch = i & 15;
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
  wg::fence_proxy_async();
  mbar::named_sync(kBarQ + wgi, 128);

  const uint32_t sq = aQ + wgi * 64 * 128;  // this warpgroup's 64 rows
  const int wg_min_pos = p.pos0 + t0 + wgi * 64;
  const int qpos_g = wg_min_pos + wl * 16 + g;  // this lane's first row's position
  auto k_at = [&](int kt) { return aKV + (kt % S) * 2 * kTileKV; };
  auto par_of = [&](int kt) { return (uint32_t)((kt / S) & 1); };
  auto masked = [&](int kt) { return kt * kBN + kBN - 1 > wg_min_pos; };
  // ping-pong: warpgroup 0 goes first; each warpgroup lets the other go after its own turn
  // (unconditionally: a branch between wgmma issue and wait serialises them, C7520), and
  // warpgroup 0 takes warpgroup 1's last arrival after the loop (every bar.sync meets exactly
  // one bar.arrive)
  auto turn_begin = [&]() {
    if constexpr (kPingPong) mbar::named_sync(kBarTurn + wgi, kConsumers);
  };
  auto turn_end = [&]() {
    if constexpr (kPingPong) mbar::named_arrive(kBarTurn + (wgi ^ 1), kConsumers);
  };
  if constexpr (kPingPong)
    if (wgi == 1) mbar::named_arrive(kBarTurn, kConsumers);

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, corr[2];
  float s[64];
  uint32_t pa[8][4];

  if constexpr (!kOverlap) {
    for (int kt = 0; kt < n_tiles; ++kt) {
      const uint32_t sk = k_at(kt);
      mbar::wait(bar_addr(sb.full_k[kt % S]), par_of(kt));
      wg::fence();
      gemm_s<kGroup>(s, sq, sk);
      wg::commit();
      wg::wait<0>();
      wg::fence_regs(s);
      mbar::arrive(bar_addr(sb.empty_k[kt % S]));
      softmax_tile(s, m, l, corr, masked(kt), qpos_g, kt * kBN, tg);
      rescale(o, corr);
      pack_p(s, pa);
      mbar::wait(bar_addr(sb.full_v[kt % S]), par_of(kt));
      wg::fence_regs(o);
      wg::fence();
      gemm_pv<kGroup>(o, pa, sk + kTileKV);
      wg::commit();
      wg::wait<0>();
      wg::fence_regs(o);
      mbar::arrive(bar_addr(sb.empty_v[kt % S]));
    }
  } else {
    // tile 0: S only
    mbar::wait(bar_addr(sb.full_k[0]), 0);
    turn_begin();
    wg::fence();
    gemm_s<kGroup>(s, sq, k_at(0));
    wg::commit();
    turn_end();
    wg::wait<0>();
    wg::fence_regs(s);
    mbar::arrive(bar_addr(sb.empty_k[0]));
    softmax_tile(s, m, l, corr, masked(0), qpos_g, 0, tg);
    pack_p(s, pa);  // O is zero: nothing to rescale
    // iteration kt: S of tile kt and O += P V of tile kt - 1 back to back; the softmax of
    // tile kt while the P V product runs
    for (int kt = 1; kt < n_tiles; ++kt) {
      const uint32_t sk = k_at(kt), sv = k_at(kt - 1) + kTileKV;
      mbar::wait(bar_addr(sb.full_k[kt % S]), par_of(kt));
      mbar::wait(bar_addr(sb.full_v[(kt - 1) % S]), par_of(kt - 1));
      turn_begin();
      wg::fence_regs(o);
      wg::fence();
      gemm_s<kGroup>(s, sq, sk);
      wg::commit();
      gemm_pv<kGroup>(o, pa, sv);
      wg::commit();
      turn_end();
      wg::wait<1>();  // S done
      wg::fence_regs(s);
      mbar::arrive(bar_addr(sb.empty_k[kt % S]));
      softmax_tile(s, m, l, corr, masked(kt), qpos_g, kt * kBN, tg);
      wg::wait<0>();  // P V of tile kt - 1 done
      wg::fence_regs(o);
      mbar::arrive(bar_addr(sb.empty_v[(kt - 1) % S]));
      rescale(o, corr);
      pack_p(s, pa);
    }
    // the last tile's P V product
    const int kl = n_tiles - 1;
    mbar::wait(bar_addr(sb.full_v[kl % S]), par_of(kl));
    wg::fence_regs(o);
    wg::fence();
    gemm_pv<kGroup>(o, pa, k_at(kl) + kTileKV);
    wg::commit();
    wg::wait<0>();
    wg::fence_regs(o);
    if constexpr (kPingPong)
      if (wgi == 0) mbar::named_sync(kBarTurn, kConsumers);  // warpgroup 1's last arrival
  }

  // every tile's full_v phase has been waited for: the producer's bad-entry flag is visible
  const bool bad = *reinterpret_cast<volatile int*>(&sb.bad) != 0;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int t = t0 + wgi * 64 + wl * 16 + g + 8 * r;
    if (t < p.n_tokens) {
      const float inv = bad ? __int_as_float(0x7fc00000) : 1.0f / sum;
      float* dst = p.out + ((int64_t)t * p.n_heads + h) * kD + 2 * tg;
#pragma unroll
      for (int j = 0; j < 16; ++j)
        *reinterpret_cast<float2*>(dst + 8 * j) =
            make_float2(o[4 * j + 2 * r] * inv, o[4 * j + 2 * r + 1] * inv);
    }
  }
}

#endif  // FRUGAL_WGMMA

// kGroup: the grouped K/V layout (tk / tv: one box per block, tk_run / tv_run: one box per
// tile of consecutive blocks; 5-D maps); else the half-split layout (4-D maps tk / tv; the
// run maps are unused).
template <bool kOverlap, bool kPingPong, int kStages, bool kGroup>
__global__ void __launch_bounds__(kThreadsWs, 1)
    prefill_tma_kernel(const __grid_constant__ CUtensorMap tk,
                       const __grid_constant__ CUtensorMap tv,
                       const __grid_constant__ CUtensorMap tk_run,
                       const __grid_constant__ CUtensorMap tv_run, PagedPrefillParams p,
                       int bs_shift, int box_rows, int runs) {
#if FRUGAL_WGMMA  // else (the compute_90 PTX): empty; the host launches it on 9.x devices only
  static_assert(kOverlap || !kPingPong, "ping-pong needs the overlapped loop");
  extern __shared__ unsigned char smem_raw[];
  __shared__ Barriers sb;
  unsigned char* smem = smem_raw + ((1024 - (ptx::smem_addr(smem_raw) & 1023)) & 1023);
  unsigned char* sQ = smem;
  unsigned char* sKV = smem + 2 * kHalfQ;  // stage i: K at i * 2 * kTileKV, V right after
  const uint32_t aQ = ptx::smem_addr(sQ), aKV = ptx::smem_addr(sKV);

  const int h = blockIdx.x;
  const int t0 = (gridDim.y - 1 - blockIdx.y) * kBM;  // longest tiles first
  const int tid = threadIdx.x;
  const int last_pos = p.pos0 + min(t0 + kBM, p.n_tokens) - 1;
  const int n_tiles = last_pos / kBN + 1;

  if (tid == 0) {
    for (int i = 0; i < kStages; ++i) {
      mbar::init(bar_addr(sb.full_k[i]), 1);
      mbar::init(bar_addr(sb.full_v[i]), 1);
      mbar::init(bar_addr(sb.empty_k[i]), kConsumers);
      mbar::init(bar_addr(sb.empty_v[i]), kConsumers);
    }
    mbar::init(bar_addr(sb.vfix), 1);
    sb.bad = 0;
    mbar::fence_init();
    tma::prefetch_map(&tk);
    tma::prefetch_map(&tv);
    if constexpr (kGroup) {
      tma::prefetch_map(&tk_run);
      tma::prefetch_map(&tv_run);
    }
  }
  __syncthreads();

  if (tid < 128) {  // producer warpgroup
    mbar::setmaxnreg_dec<24>();
    if (tid < (kGroup ? 64 : 32)) {
      ProducerArgs a;
      a.tk = &tk;
      a.tv = &tv;
      a.tk_run = &tk_run;
      a.tv_run = &tv_run;
      a.table = p.block_table;
      a.n_blocks = p.n_blocks;
      a.bs_shift = bs_shift;
      a.box_rows = box_rows;
      a.runs = runs != 0;
      a.kvh = h / (p.n_heads / p.n_kv_heads);
      a.last_pos = last_pos;
      a.n_tiles = n_tiles;
      a.aKV = aKV;
      if constexpr (kGroup) produce_grouped<kStages>(a, sb, sKV, tid >> 5, tid & 31);
      else produce<kStages>(a, sb, sKV, tid);
    }
  } else {
    mbar::setmaxnreg_inc<240>();  // 24 x 128 + 240 x 256 = the 168 x 384 the block starts with
    consume<kOverlap, kPingPong, kStages, kGroup>(p, sb, sQ, aQ, aKV, t0, h, n_tiles, tid - 128);
  }
#endif
}

// Tensor maps, built once per (cache pointer, geometry, layout, box) on this host thread.
struct MapKey {
  const void* base;
  int64_t n_blocks;
  int block_size, n_kv, box_rows;
  bool grouped;
  bool operator==(const MapKey& o) const {
    return base == o.base && n_blocks == o.n_blocks && block_size == o.block_size &&
           n_kv == o.n_kv && box_rows == o.box_rows && grouped == o.grouped;
  }
};
struct MapEntry {
  MapKey key;
  CUtensorMap map;
};

// Half-split layout: [n_blocks][block_size][n_kv][128] as 4-D, box 64 columns x 1 head x
// box_rows rows x 1 block. Grouped layout: the same bytes as 5-D (64 columns, 8 rows of a
// group, 2 halves at 128 bytes, KV head, groups of 8 positions over all blocks), box 64 x 8 x
// 2 x 1 x box_rows / 8: smem [group][half][8 rows][128 bytes] (kGroupBytes).
Result<CUtensorMap> cache_map(const MapKey& k) {
  static thread_local std::vector<MapEntry> cache;
  for (const MapEntry& e : cache)
    if (e.key == k) return e.map;
  const uint64_t row = (uint64_t)k.n_kv * kD * 2;  // bytes of one position (all KV heads)
  CUtensorMap map;
  if (k.grouped) {
    tma::Map5dParams mp;
    mp.base = k.base;
    mp.dims[0] = 64;
    mp.dims[1] = 8;
    mp.dims[2] = 2;
    mp.dims[3] = (uint64_t)k.n_kv;
    mp.dims[4] = (uint64_t)k.n_blocks * (uint64_t)(k.block_size / 8);
    mp.strides_bytes[0] = row;
    mp.strides_bytes[1] = 128;
    mp.strides_bytes[2] = (uint64_t)kD * 2;
    mp.strides_bytes[3] = 8 * row;
    mp.box[0] = 64;
    mp.box[1] = 8;
    mp.box[2] = 2;
    mp.box[3] = 1;
    mp.box[4] = (uint32_t)(k.box_rows / 8);
    FRUGAL_RETURN_IF_ERROR(tma::encode_bf16_5d_sw128(mp, &map));
  } else {
    tma::Map4dParams mp;
    mp.base = k.base;
    mp.dims[0] = kD;
    mp.dims[1] = (uint64_t)k.n_kv;
    mp.dims[2] = (uint64_t)k.block_size;
    mp.dims[3] = (uint64_t)k.n_blocks;
    mp.strides_bytes[0] = (uint64_t)kD * 2;
    mp.strides_bytes[1] = row;
    mp.strides_bytes[2] = (uint64_t)k.block_size * row;
    mp.box[0] = 64;
    mp.box[1] = 1;
    mp.box[2] = (uint32_t)k.box_rows;
    mp.box[3] = 1;
    FRUGAL_RETURN_IF_ERROR(tma::encode_bf16_4d_sw128(mp, &map));
  }
  if (cache.size() >= 256) cache.clear();  // a bound; a model has 2-4 maps per layer
  cache.push_back({k, map});
  return map;
}

// Grouped kernels' box choices (set_prefill_tma_boxes): rows per box at most, runs on / off.
thread_local int t_box_cap = kBN;
thread_local bool t_runs = true;

template <bool kOverlap, bool kPingPong, int kStages, bool kGroup>
Status launch_tma(const PagedPrefillParams& p, int bs_shift, int box_rows, cudaStream_t stream) {
  if (kGroup && box_rows > t_box_cap) box_rows = t_box_cap;
  constexpr size_t smem = smem_bytes_ws<kStages>();
  auto* kernel = prefill_tma_kernel<kOverlap, kPingPong, kStages, kGroup>;
  int dev = 0;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  static thread_local int ready_dev = -1;  // this thread's device with the attribute set
  if (dev != ready_dev) {
    FRUGAL_CUDA_RETURN_IF_ERROR(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    ready_dev = dev;
  }
  MapKey kk{p.k_cache, p.n_blocks, p.block_size, p.n_kv_heads, box_rows, kGroup};
  MapKey vk = kk;
  vk.base = p.v_cache;
  FRUGAL_ASSIGN_OR_RETURN(CUtensorMap tk, cache_map(kk));
  FRUGAL_ASSIGN_OR_RETURN(CUtensorMap tv, cache_map(vk));
  CUtensorMap tk_run = tk, tv_run = tv;
  if (kGroup && box_rows < kBN) {  // the whole-tile box for runs of consecutive blocks
    kk.box_rows = vk.box_rows = kBN;
    FRUGAL_ASSIGN_OR_RETURN(tk_run, cache_map(kk));
    FRUGAL_ASSIGN_OR_RETURN(tv_run, cache_map(vk));
  }
  const dim3 grid((unsigned)p.n_heads, (unsigned)((p.n_tokens + kBM - 1) / kBM));
  kernel<<<grid, kThreadsWs, smem, stream>>>(tk, tv, tk_run, tv_run, p, bs_shift, box_rows,
                                             t_runs ? 1 : 0);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("prefill_tma_kernel");
  return Status::Ok();
}

}  // namespace

Status set_prefill_tma_boxes(int max_box_rows, bool runs) {
  if (max_box_rows != 8 && max_box_rows != 16 && max_box_rows != 32 && max_box_rows != 64 &&
      max_box_rows != 128)
    return InvalidArgument("set_prefill_tma_boxes: max_box_rows " +
                           std::to_string(max_box_rows) + " (8, 16, 32, 64 or 128)");
  t_box_cap = max_box_rows;
  t_runs = runs;
  return Status::Ok();
}

constexpr int kGroupedFallbackStages = 2;

Status paged_attention_prefill_tma(const PagedPrefillParams& p, int variant, cudaStream_t stream,
                                   bool* launched) {
  *launched = false;
  if (p.head_dim != kD) return Status::Ok();
  // A tensor map needs: a power-of-two block size of at least 8 (boxes of whole 1024-byte
  // swizzle periods that tile the 128 positions of a K/V tile), block indices that fit the
  // copy's int32 coordinates, 16-byte aligned caches (checked by the caller).
  int bs_shift = -1;
  for (int sh = 3; sh < 31; ++sh)
    if (p.block_size == 1 << sh) bs_shift = sh;
  if (bs_shift < 0 || p.n_blocks > INT32_MAX || p.head_dim != kD) return Status::Ok();
  const bool grouped = variant == kWgmmaTmaGrouped || variant == kWgmmaTmaGrouped3;
  // the grouped maps count groups of 8 positions in int32 coordinates
  if (grouped && p.n_blocks * (p.block_size / 8) > INT32_MAX) return Status::Ok();
  int major = 0, dev = 0;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  FRUGAL_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  if (major != 9) return Status::Ok();  // the caller's kernel reports the architecture
  const int box_rows = p.block_size < kBN ? p.block_size : kBN;
  Status st =
      variant == kWgmmaTmaGrouped ? launch_tma<true, true, 2, true>(p, bs_shift, box_rows, stream)
      : variant == kWgmmaTmaGrouped3
          ? launch_tma<true, true, 3, true>(p, bs_shift, box_rows, stream)
      : variant == kWgmmaTmaPingPong
          ? launch_tma<true, true, 2, false>(p, bs_shift, box_rows, stream)
      : variant == kWgmmaTmaPingPong3
          ? launch_tma<true, true, 3, false>(p, bs_shift, box_rows, stream)
      : variant == kWgmmaTmaOverlap
          ? launch_tma<true, false, 2, false>(p, bs_shift, box_rows, stream)
          : launch_tma<false, false, 2, false>(p, bs_shift, box_rows, stream);
  if (grouped && st.code() == StatusCode::kUnsupported) {
    // This driver refused the grouped layout's 5-D map (tma.cu): run the per-block 4-D one.
    Status fallback =
        launch_tma<true, true, kGroupedFallbackStages, false>(p, bs_shift, box_rows, stream);
    if (fallback.ok()) *launched = true;
    return fallback;
  }
  if (st.ok()) *launched = true;
  return st;
}

}  // namespace frugal::cuda
