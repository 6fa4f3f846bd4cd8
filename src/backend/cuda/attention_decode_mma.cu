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
#include "backend/cuda/attention_decode_warp.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"
#include "backend/cuda/mma.cuh"

namespace frugal::cuda {

namespace {

using namespace decode_mma;

constexpr int kStages = 3;
constexpr int kTable = 1024;   // block-table entries a block stages in shared memory

template <int D>
constexpr size_t smem_bytes() {
  return (size_t)kWarps * kStages * 2 * kTP * D * 2;  // per warp: stages x (K, V) tiles
}

// V10: the kernel as of attn v10c (NOTES), for A/B only: per-row checked tile loads, q split
// before the first tile loads, per-element warp merge, one tile per softmax step.
template <int D, bool T3, bool V10>
__global__ void __launch_bounds__(kWarps * 32)
    paged_decode_mma_kernel(PagedDecodeParams p, int split_size, int n_splits, int bs_shift) {
  // (p.mma_tile_pairs: a warp with exactly kStages - 1 = 2 tiles, both issued up front, takes
  // them in one 32-position step, attend_tile_pair; batch 1 at short splits.)
  wait_prior_grid();
  // Under PDL the merge kernel's blocks may take free SM slots now and wait there (its
  // griddepcontrol.wait still waits for this whole grid): its launch leaves the critical path.
  allow_dependent_launch();
  constexpr int TILE = kTP * D * 2;    // bytes of one K (or V) tile
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ int32_t sm_table[kTable];
  __shared__ float sm_m[kWarps][8], sm_l[kWarps][8];

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.n_heads / p.n_kv_heads;
  // Issued first; the table and q loads below do not wait for it (one memory latency less on
  // the path to the first K/V tile, which matters at batch 1).
  const int seq_len = p.seq_lens[seq];
  const int start = split * split_size;
  const int warp = threadIdx.x >> 5;
  const Lane ln = lane_roles<T3>(threadIdx.x & 31);
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

  uint32_t qf[D / 16][4];
  uint32_t ql[T3 ? 1 : D / 16][4];  // !T3: the lo terms (the extra A fragment)
  float2 qx[D / 16][2];  // q, split into bf16 terms once the first K/V tiles are issued
  load_q_raw<D>(p, seq, kvh, G, ln, qx);
  if (V10) split_q<D, T3>(p, qx, ln, qf, ql);
  // Uniform per block: every thread reaches the barrier or none does.
  if (start >= seq_len) return;  // the merge reads only splits that start inside the sequence
  const int end = min(seq_len, start + split_size);
  __syncthreads();  // sm_table

  unsigned char* wsm = smem + (size_t)warp * kStages * 2 * TILE;
  const int n_tiles = (end - start + kTP - 1) / kTP;
  const int my_tiles = warp < n_tiles ? (n_tiles - warp + kWarps - 1) / kWarps : 0;
  // All 16 positions of a tile in one block: block_size a power of two >= 16 (tiles start at
  // multiples of 16), one table lookup per tile.
  const bool one_block = bs_shift >= 4;
  bool bad = false;

  auto lookup = [&](int bi) { return staged ? sm_table[bi - first_bi] : __ldg(table + bi); };
  auto issue = [&](int i, int stage) {
    const int pos0 = start + (warp + i * kWarps) * kTP;
    const int32_t blk = one_block ? lookup(pos0 >> bs_shift) : 0;
    load_tile<D, decltype(lookup), !V10>(p, wsm + stage * 2 * TILE, pos0, end, kvh, ln.lane,
                                         one_block, blk, bs_shift, lookup, bad);
  };

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m = -INFINITY, l = 0.0f;

#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < my_tiles) issue(i, i);
    cp_async_commit();
  }
  if (!V10) split_q<D, T3>(p, qx, ln, qf, ql);  // waits for q: after the first tiles' issue
  static_assert(kStages == 3, "the pair step takes the two prologue tiles (stages 0, 1)");
  if (!V10 && p.mma_tile_pairs && my_tiles == 2) {
    cp_async_wait<0>();
    __syncwarp();  // both tiles visible to the warp
    const unsigned char* const sk[2] = {wsm, wsm + 2 * TILE};
    const int pos[2] = {start + warp * kTP, start + (warp + kWarps) * kTP};
    attend_tile_pair<D, T3>(sk, qf, ql, pos, end, ln, o, m, l);
  } else {
    for (int i = 0; i < my_tiles; ++i) {
      const int nxt = i + kStages - 1;
      if (nxt < my_tiles) issue(nxt, nxt % kStages);
      cp_async_commit();
      cp_async_wait<kStages - 1>();
      __syncwarp();  // tile i (every lane's copies and zero stores) visible to the warp
      attend_tile<D, T3>(wsm + (i % kStages) * 2 * TILE, qf, ql,
                         start + (warp + i * kWarps) * kTP, end, ln, o, m, l);
      __syncwarp();  // every lane is done reading this stage before it is refilled
    }
  }
  cp_async_wait<0>();

  // Merge the warps: O rows (query heads) of each warp in the (now free) pipeline memory.
  const bool any_bad = __syncthreads_or(bad);
  float* so = reinterpret_cast<float*>(smem);  // [kWarps][8][D] floats <= smem_bytes<D>()
  warp_to_smem<D, T3>(o, m, l, G, warp, ln, so, sm_m, sm_l);
  __syncthreads();
  __shared__ float2 sm_ml[8];
  if (!V10 && threadIdx.x < G) merge_weights<kWarps>(sm_m, sm_l, threadIdx.x, sm_ml);
  if (!V10) __syncthreads();  // weights in sm_m
  const int64_t n_heads = p.n_heads;
  float* ws_acc = static_cast<float*>(p.workspace);
  float* ws_ml = ws_acc + (int64_t)p.n_seqs * n_heads * n_splits * D;
  for (int idx = threadIdx.x; idx < G * D; idx += kWarps * 32) {
    const int hg = idx / D, d = idx % D;
    float M, L, A = 0.0f;
    if (V10) {
      merge_warps<D>(so, sm_m, sm_l, hg, d, M, L, A);
    } else {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float wt = sm_m[w][hg];
        A += wt == 0.0f ? 0.0f : so[((size_t)w * 8 + hg) * D + d] * wt;
      }
      M = sm_ml[hg].x;
      L = sm_ml[hg].y;
    }
    const int64_t part = ((int64_t)seq * n_heads + kvh * G + hg) * n_splits + split;
    ws_acc[part * D + d] = A;
    if (d == 0) {
      ws_ml[part * 2] = M;
      ws_ml[part * 2 + 1] = any_bad ? NAN : L;
    }
  }
}

template <int D, bool T3, bool V10 = false>
Status set_smem_attribute() {
  static_assert(smem_bytes<D>() >= (size_t)kWarps * 8 * D * sizeof(float), "merge scratch");
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(paged_decode_mma_kernel<D, T3, V10>,
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   (int)smem_bytes<D>()));
  return Status::Ok();
}

template <int D, bool T3, bool V10>
Status launch_dv(const PagedDecodeParams& p, const PagedDecodePlan& plan, cudaStream_t stream) {
  FRUGAL_RETURN_IF_ERROR((set_smem_attribute<D, T3, V10>()));
  int shift = -1;  // log2(block_size) when it is a power of two (the pool's rule), else -1
  if ((p.block_size & (p.block_size - 1)) == 0)
    for (shift = 0; (1 << shift) < p.block_size; ++shift) {}
  const dim3 grid(plan.n_splits, p.n_kv_heads, p.n_seqs);
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(paged_decode_mma_kernel<D, T3, V10>, grid,
                                            dim3(kWarps * 32), smem_bytes<D>(), stream, p,
                                            plan.split_size, plan.n_splits, shift));
  return Status::Ok();
}

template <int D, bool T3>
Status launch_d(const PagedDecodeParams& p, const PagedDecodePlan& plan, cudaStream_t stream) {
  return p.mma_v10 ? launch_dv<D, T3, true>(p, plan, stream)
                   : launch_dv<D, T3, false>(p, plan, stream);
}

template <int D, bool T3>
Result<int> blocks_per_sm_d() {
  int per_sm = 0;
  FRUGAL_RETURN_IF_ERROR((set_smem_attribute<D, T3>()));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &per_sm, paged_decode_mma_kernel<D, T3, false>, kWarps * 32, smem_bytes<D>()));
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
