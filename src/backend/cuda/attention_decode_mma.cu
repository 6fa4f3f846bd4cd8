// Paged decode attention, split kernel on tensor cores (see attention.cuh, kDecodeMma).
//
// Block = (split, KV head, sequence), kWarps warps. The split's positions are cut into tiles of
// 16; warp w takes tiles w, w + kWarps, ... and runs on its own: a kStages-deep cp.async pipeline
// in a warp-private slice of shared memory (K and V tiles of 16 rows x D bf16, XOR-swizzled in
// 16-byte chunks), no block barrier inside the loop. Per tile, with the query group as the
// M dimension of m16n8k16, q and P are carried as three bf16 terms each (hi, mid, lo: float's
// 24 bits) in the rows a group of <= 8 heads would waste:
//   groups <= 4 (T3 = true): head h's hi in row h, mid in row 8 + h (both held by lane group h),
//     lo in row 4 + h (lane group 4 + h, i.e. lane ^ 16), row 12 + h zero: no extra mma. A score
//     is (row h + row 8 + h) + (row 4 + h), summed with one xor-16 shuffle, so lane groups h and
//     4 + h hold the same score, softmax state and P, and split P the same way; their O rows are
//     added once at the end.
//   groups 5..8 (T3 = false): hi in row h, mid in row 8 + h, and lo in row h of a second A
//     fragment (rows 8..15 zero) whose mma accumulate into the same S / O: twice the mma.
// Two terms (hi + lo, the first version) were not enough: ~2^-17 relative, 10-30x the float
// kernel's error, which SmolLM2 (d 64, group 3) amplifies ~1000x into its logits (issue 7;
// dev/cuda/decode_attn_numerics.py). The T3 = false layout, its lo fragment left out:
//   S[16 x 16 pos] = Q K^T: D/16 ldmatrix of K (non-transposed: K rows are B's columns),
//                           2 mma each; the score of head g is row g + row 8 + g, which one
//                           lane holds (C fragment elements 0/1 and 2/3);
//   online softmax on S in registers (lane (g, tg) holds head g, positions 2tg, 2tg+1, 8+2tg,
//   9+2tg; the row max via two xor-shuffles; base-2 logits, q pre-scaled by scale * log2 e);
//   O[16 x D] += P V:       P re-packed from the scores as the A fragment (the C layout of two
//                           n8 tiles is the A layout of one k16 step), again hi in row g and
//                           mid in row 8 + g; D/16 ldmatrix.trans of V, 2 mma each; the output
//                           of head g is O row g + O row 8 + g.
// At the end the warps' (m, l, O) are merged in shared memory and the block writes the same
// partial (acc, max, sum) per query head as the CUDA-core kernel, for the merge kernel.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/attention_decode_mma.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"
#include "backend/cuda/mma.cuh"

namespace frugal::cuda {

namespace {

using namespace ptx;

constexpr int kWarps = 4;
constexpr int kStages = 3;
constexpr int kTP = 16;        // positions per warp tile
constexpr int kTable = 1024;   // block-table entries a block stages in shared memory
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

template <int D>
constexpr size_t smem_bytes() {
  return (size_t)kWarps * kStages * 2 * kTP * D * 2;  // per warp: stages x (K, V) tiles
}

template <int D, bool T3>
__global__ void __launch_bounds__(kWarps * 32)
    paged_decode_mma_kernel(PagedDecodeParams p, int split_size, int n_splits, int bs_shift) {
  wait_prior_grid();
  // Under PDL the merge kernel's blocks may take free SM slots now and wait there (its
  // griddepcontrol.wait still waits for this whole grid): its launch leaves the critical path.
  allow_dependent_launch();
  constexpr int CH = D / 8;            // 16-byte chunks per row
  constexpr int TILE = kTP * D * 2;    // bytes of one K (or V) tile
  constexpr int RSTEP = 32 / CH;       // rows between a lane's rows in the tile load
  constexpr int RPL = kTP / RSTEP;     // rows per lane per tile
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ int32_t sm_table[kTable];
  __shared__ float sm_m[kWarps][8], sm_l[kWarps][8];

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.n_heads / p.n_kv_heads;
  // Issued first; the table and q loads below do not wait for it (one memory latency less on
  // the path to the first K/V tile, which matters at batch 1).
  const int seq_len = p.seq_lens[seq];
  const int start = split * split_size;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, tg = lane & 3;
  const int hq = T3 ? (g & 3) : g;  // the head of the group whose terms this lane group holds
  const bool upper = T3 && g >= 4;  // 3-term layout: this lane group holds the lo terms
  const int bs = p.block_size;

  // The split's whole range of table entries (within the row: start < max_seq_len), staged
  // before seq_len is known; entries past the sequence are never used.
  const int32_t* table =
      p.block_tables + (p.shared_block_table ? 0 : (int64_t)seq * p.max_blocks_per_seq);
  const int first_bi = bs_shift >= 0 ? start >> bs_shift : start / bs;
  const int last_stage_bi =
      min(p.max_blocks_per_seq - 1,
          bs_shift >= 0 ? (start + split_size - 1) >> bs_shift : (start + split_size - 1) / bs);
  const bool staged = last_stage_bi - first_bi + 1 <= kTable;
  if (staged)
    for (int i = threadIdx.x; i <= last_stage_bi - first_bi; i += kWarps * 32)
      sm_table[i] = table[first_bi + i];

  // q of this lane's head hq of the group as bf16 A fragments (rows g in a0/a2, g + 8 in
  // a1/a3): T3: hi / mid (lane groups 0..3) or lo / 0 (4..7), else hi / mid here and lo in
  // ql; heads >= G zero.
  const float qscale = (p.scale > 0.0f ? p.scale : rsqrtf((float)D)) * kLog2e;
  uint32_t qf[D / 16][4];
  uint32_t ql[T3 ? 1 : D / 16][4];  // !T3: the lo terms (the extra A fragment)
  {
    const bool has = hq < G;
    const float* qrow = p.q + ((int64_t)seq * p.n_heads + kvh * G + min(hq, G - 1)) * D;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int d0 = kk * 16 + 2 * tg;
      const float x0 = has ? qrow[d0] * qscale : 0.0f, x1 = has ? qrow[d0 + 1] * qscale : 0.0f;
      const float x8 = has ? qrow[d0 + 8] * qscale : 0.0f;
      const float x9 = has ? qrow[d0 + 9] * qscale : 0.0f;
      uint32_t lo01, lo89;
      a_terms<T3>(x0, x1, upper, qf[kk][0], qf[kk][1], lo01);
      a_terms<T3>(x8, x9, upper, qf[kk][2], qf[kk][3], lo89);
      if (!T3) {
        ql[T3 ? 0 : kk][0] = lo01;
        ql[T3 ? 0 : kk][1] = 0u;
        ql[T3 ? 0 : kk][2] = lo89;
        ql[T3 ? 0 : kk][3] = 0u;
      }
    }
  }
  // Uniform per block: every thread reaches the barrier or none does.
  if (start >= seq_len) return;  // the merge reads only splits that start inside the sequence
  const int end = min(seq_len, start + split_size);
  __syncthreads();  // sm_table

  unsigned char* wsm = smem + (size_t)warp * kStages * 2 * TILE;
  const int n_tiles = (end - start + kTP - 1) / kTP;
  const int my_tiles = warp < n_tiles ? (n_tiles - warp + kWarps - 1) / kWarps : 0;
  const int64_t kv_row = (int64_t)p.n_kv_heads * D;  // elements per cache row (block, slot)
  const int64_t kv_col = (int64_t)kvh * D + (lane % CH) * 8;
  const int r0 = lane / CH;
  // All 16 positions of a tile in one block: block_size a power of two >= 16 (tiles start at
  // multiples of 16), one table lookup per tile.
  const bool one_block = bs_shift >= 4;
  bool bad = false;

  auto lookup = [&](int bi) { return staged ? sm_table[bi - first_bi] : __ldg(table + bi); };
  auto load_tile = [&](int i, int stage) {
    unsigned char* sK = wsm + stage * 2 * TILE;
    unsigned char* sV = sK + TILE;
    const int pos0 = start + (warp + i * kWarps) * kTP;
    int64_t base = 0;
    bool base_ok = true;
    if (one_block) {
      const int32_t blk = lookup(pos0 >> bs_shift);
      base_ok = blk >= 0 && blk < p.n_blocks;
      base = ((int64_t)blk * bs + (pos0 & (bs - 1))) * kv_row + kv_col;
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
          const int32_t blk = lookup(bi);
          ok = blk >= 0 && blk < p.n_blocks;
          e = ((int64_t)blk * bs + slot) * kv_row + kv_col;
        }
        bad |= !ok;
      }
      if (ok) {
        cp_async16(smem_addr(sK + off), p.k_cache + e);
        cp_async16(smem_addr(sV + off), p.v_cache + e);
      } else {  // past the end (masked) or a bad block (the partial becomes NaN): zeros
        *reinterpret_cast<uint4*>(sK + off) = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(sV + off) = make_uint4(0, 0, 0, 0);
      }
    }
  };

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m = -INFINITY, l = 0.0f;

#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < my_tiles) load_tile(i, i);
    cp_async_commit();
  }
  for (int i = 0; i < my_tiles; ++i) {
    const int nxt = i + kStages - 1;
    if (nxt < my_tiles) load_tile(nxt, nxt % kStages);
    cp_async_commit();
    cp_async_wait<kStages - 1>();
    __syncwarp();  // tile i (every lane's copies and zero stores) visible to the warp
    const unsigned char* sK = wsm + (i % kStages) * 2 * TILE;
    const unsigned char* sV = sK + TILE;
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
    const int pos0 = start + (warp + i * kWarps) * kTP;
#pragma unroll
    for (int j = 0; j < 2; ++j) {  // head hq's scores: the sum of its term rows
      s[j][0] += s[j][2];
      s[j][1] += s[j][3];
      if (T3) {  // a + b in one lane group, b + a in the other: the same float
        s[j][0] += __shfl_xor_sync(0xffffffffu, s[j][0], 16);
        s[j][1] += __shfl_xor_sync(0xffffffffu, s[j][1], 16);
      }
    }
    if (pos0 + kTP > end) {  // the split's last tile: mask positions past the end
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
    a_terms<T3>(p00, p01, upper, pa[0], pa[1], pl[0]);
    a_terms<T3>(p10, p11, upper, pa[2], pa[3], pl[2]);
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
    __syncwarp();  // every lane is done reading this stage before it is refilled
  }
  cp_async_wait<0>();
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);

  // Merge the warps: O rows (query heads) of each warp in the (now free) pipeline memory.
  const bool any_bad = __syncthreads_or(bad);
  float* so = reinterpret_cast<float*>(smem);  // [kWarps][8][D] floats <= smem_bytes<D>()
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
  if (hq < G && !upper) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      *reinterpret_cast<float2*>(so + ((size_t)warp * 8 + hq) * D + 8 * j + 2 * tg) =
          make_float2(o[j][0] + o[j][2], o[j][1] + o[j][3]);
    if (tg == 0) {
      sm_m[warp][hq] = m;
      sm_l[warp][hq] = l;
    }
  }
  __syncthreads();
  const int64_t n_heads = p.n_heads;
  float* ws_acc = static_cast<float*>(p.workspace);
  float* ws_ml = ws_acc + (int64_t)p.n_seqs * n_heads * n_splits * D;
  for (int idx = threadIdx.x; idx < G * D; idx += kWarps * 32) {
    const int hg = idx / D, d = idx % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w][hg]);
    float L = 0.0f, A = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float wt = sm_m[w][hg] == -INFINITY ? 0.0f : exp2f(sm_m[w][hg] - M);  // idle warp
      L += sm_l[w][hg] * wt;
      A += wt == 0.0f ? 0.0f : so[((size_t)w * 8 + hg) * D + d] * wt;
    }
    if (any_bad) L = NAN;
    const int64_t part = ((int64_t)seq * n_heads + kvh * G + hg) * n_splits + split;
    ws_acc[part * D + d] = A;
    if (d == 0) {
      ws_ml[part * 2] = M;
      ws_ml[part * 2 + 1] = L;
    }
  }
}

template <int D, bool T3>
Status set_smem_attribute() {
  static_assert(smem_bytes<D>() >= (size_t)kWarps * 8 * D * sizeof(float), "merge scratch");
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(paged_decode_mma_kernel<D, T3>,
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   (int)smem_bytes<D>()));
  return Status::Ok();
}

template <int D, bool T3>
Status launch_d(const PagedDecodeParams& p, const PagedDecodePlan& plan, cudaStream_t stream) {
  FRUGAL_RETURN_IF_ERROR((set_smem_attribute<D, T3>()));
  int shift = -1;  // log2(block_size) when it is a power of two (the pool's rule), else -1
  if ((p.block_size & (p.block_size - 1)) == 0)
    for (shift = 0; (1 << shift) < p.block_size; ++shift) {}
  const dim3 grid(plan.n_splits, p.n_kv_heads, p.n_seqs);
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(paged_decode_mma_kernel<D, T3>, grid,
                                            dim3(kWarps * 32), smem_bytes<D>(), stream, p,
                                            plan.split_size, plan.n_splits, shift));
  return Status::Ok();
}

template <int D, bool T3>
Result<int> blocks_per_sm_d() {
  int per_sm = 0;
  FRUGAL_RETURN_IF_ERROR((set_smem_attribute<D, T3>()));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &per_sm, paged_decode_mma_kernel<D, T3>, kWarps * 32, smem_bytes<D>()));
  return per_sm;
}

}  // namespace

Result<int> paged_decode_mma_blocks_per_sm(int head_dim, int group) {
  if (head_dim == 64) return group <= 4 ? blocks_per_sm_d<64, true>() : blocks_per_sm_d<64, false>();
  return group <= 4 ? blocks_per_sm_d<128, true>() : blocks_per_sm_d<128, false>();
}

Status launch_paged_decode_mma(const PagedDecodeParams& p, const PagedDecodePlan& plan,
                               cudaStream_t stream) {
  const bool t3 = p.n_heads / p.n_kv_heads <= 4;
  if (p.head_dim == 64)
    return t3 ? launch_d<64, true>(p, plan, stream) : launch_d<64, false>(p, plan, stream);
  if (p.head_dim == 128)
    return t3 ? launch_d<128, true>(p, plan, stream) : launch_d<128, false>(p, plan, stream);
  return Unsupported("paged_attention_decode (mma): head_dim " + std::to_string(p.head_dim));
}

}  // namespace frugal::cuda
