// Paged decode attention for small batches in ONE kernel (kDecodeCluster, see attention.cuh):
// a thread-block cluster per (sequence, KV head) splits the positions, and the blocks merge
// their partial softmax states through distributed shared memory, so there is no partial
// workspace in global memory and no second (merge) kernel.
//
// Grid (C, n_kv_heads, n_seqs), cluster (C, 1, 1), 8 warps per block (a block per
// multiprocessor must keep as many tiles in flight as the split kernel's two blocks of 4: a
// warp streams only about one tile per ~2 us). The sequence's 16-position tiles are dealt
// round-robin to the cluster's 8C warps (tile t to warp t % 8C, warp w of block rank r being
// number 8r + w), so the split adapts to
// each sequence's length on the device. Each warp runs the tensor-core tile loop of the split
// kernel (attention_decode_warp.cuh: three bf16 terms of q and P, online softmax in registers)
// over a 3-stage cp.async pipeline in its own slice of shared memory (192 KiB per block at
// d 128). The block-table entries of a warp's tiles are held one per lane (32 tiles per load,
// the next 32 loaded while the current ones are used), the first 32 before the PDL wait.
//
// End: the warps merge in shared memory (as in the split kernel) into the block's partial
// (m, l, acc[G][D]); cluster barrier; each block then produces a 1/C share of the G x D
// outputs, reading the C partials of its float4 columns from the peers' shared memory
// (ld through cluster-mapped addresses), and a last cluster barrier keeps every block's shared
// memory alive until its peers have read it.
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/attention_decode_mma.cuh"
#include "backend/cuda/attention_decode_warp.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"

namespace frugal::cuda {

namespace {

namespace cg = cooperative_groups;
using namespace decode_mma;

constexpr int kCWarps = kDecodeClusterWarps;  // warps per block
constexpr int kStages = 3;
constexpr int kMaxCluster = 16;   // non-portable cluster size (portable: 8)

template <int D>
constexpr size_t cluster_smem_bytes() {
  return (size_t)kCWarps * kStages * 2 * kTP * D * 2;  // per warp: stages x (K, V) tiles
}

template <int D, bool T3>
__global__ void __launch_bounds__(kCWarps * 32)
    paged_decode_cluster_kernel(PagedDecodeParams p, int bs_shift) {
  constexpr int TILE = kTP * D * 2;
  constexpr int C4 = D / 4;  // float4 columns of an output row
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ float sm_m[kCWarps][8], sm_l[kCWarps][8];
  __shared__ __align__(16) float sm_acc[8][D];  // the block's partial, read by the peers
  __shared__ float2 sm_ml[8];

  const cg::cluster_group cluster = cg::this_cluster();
  const int C = (int)cluster.num_blocks();
  const int rank = (int)cluster.block_rank();
  const int kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.n_heads / p.n_kv_heads;
  const int warp = threadIdx.x >> 5;
  const Lane ln = lane_roles<T3>(threadIdx.x & 31);
  const int NW = C * kCWarps;         // warps of the cluster
  const int gw = rank * kCWarps + warp;
  const int32_t* table =
      p.block_tables + (p.shared_block_table ? 0 : (int64_t)seq * p.max_blocks_per_seq);
  // All 16 positions of a tile in one block: block_size a power of two >= 16, one table entry
  // per tile; lane j holds the entry of the warp's tile 32 * batch + j.
  const bool one_block = bs_shift >= 4;
  auto fetch_entries = [&](int batch) -> int32_t {
    const int64_t tile = gw + (int64_t)(batch * 32 + ln.lane) * NW;
    const int64_t e = (tile * kTP) >> (one_block ? bs_shift : 0);
    return e < p.max_blocks_per_seq ? __ldg(table + e) : -1;
  };
  // Before the PDL wait: the block tables are not written by kernels (attention.cuh).
  int32_t ent_cur = one_block ? fetch_entries(0) : -1, ent_next = -1;

  wait_prior_grid();
  allow_dependent_launch();
  const int seq_len = p.seq_lens[seq];
  uint32_t qf[D / 16][4];
  uint32_t ql[T3 ? 1 : D / 16][4];
  float2 qx[D / 16][2];  // q, split into bf16 terms once the first K/V tiles are issued
  load_q_raw<D>(p, seq, kvh, G, ln, qx);

  unsigned char* wsm = smem + (size_t)warp * kStages * 2 * TILE;
  const int n_tiles = (seq_len + kTP - 1) / kTP;
  const int my_tiles = gw < n_tiles ? (n_tiles - gw + NW - 1) / NW : 0;
  if (one_block && my_tiles > 32) ent_next = fetch_entries(1);
  bool bad = false;
  auto row_block = [&](int bi) { return __ldg(table + bi); };
  auto issue = [&](int i) {  // warp-uniform, in order i = 0, 1, 2, ...
    if (one_block && i > 0 && (i & 31) == 0) {
      ent_cur = ent_next;
      ent_next = i + 32 < my_tiles ? fetch_entries(i / 32 + 1) : -1;
    }
    const int32_t blk = one_block ? __shfl_sync(0xffffffffu, ent_cur, i & 31) : 0;
    load_tile<D>(p, wsm + (i % kStages) * 2 * TILE, (gw + i * NW) * kTP, seq_len, kvh, ln.lane,
                 one_block, blk, bs_shift, row_block, bad);
  };

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m = -INFINITY, l = 0.0f;
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < my_tiles) issue(i);
    cp_async_commit();
  }
  split_q<D, T3>(p, qx, ln, qf, ql);  // waits for q: after the first tiles' issue
  for (int i = 0; i < my_tiles; ++i) {
    if (i + kStages - 1 < my_tiles) issue(i + kStages - 1);
    cp_async_commit();
    cp_async_wait<kStages - 1>();
    __syncwarp();  // tile i (every lane's copies and zero stores) visible to the warp
    attend_tile<D, T3>(wsm + (i % kStages) * 2 * TILE, qf, ql, (gw + i * NW) * kTP, seq_len, ln,
                       o, m, l);
    __syncwarp();  // every lane is done reading this stage before it is refilled
  }
  cp_async_wait<0>();

  // The block's partial: its warps merged in shared memory.
  const bool any_bad = __syncthreads_or(bad);
  float* so = reinterpret_cast<float*>(smem);  // [kCWarps][8][D] floats <= the pipeline's
  warp_to_smem<D, T3>(o, m, l, G, warp, ln, so, sm_m, sm_l);
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += kCWarps * 32) {
    const int hg = idx / D, d = idx % D;
    float M, L, A;
    merge_warps<D, kCWarps>(so, sm_m, sm_l, hg, d, M, L, A);
    sm_acc[hg][d] = A;
    if (d == 0) sm_ml[hg] = make_float2(M, any_bad ? NAN : L);
  }
  cluster.sync();  // every block's partial written (release / acquire at cluster scope)

  // The cluster's merge: output column task k (head k / C4, dims 4 (k % C4) ..) is done by
  // block k % C, thread k / C; all C partials of the column are loaded before any is used.
  for (int k = rank + C * (int)threadIdx.x; k < G * C4; k += C * kCWarps * 32) {
    const int hg = k / C4, c4 = k % C4;
    float2 ml[kMaxCluster];
    float4 a[kMaxCluster];
#pragma unroll
    for (int r = 0; r < kMaxCluster; ++r) {
      if (r < C) {
        ml[r] = *cluster.map_shared_rank(&sm_ml[hg], r);
        a[r] = *cluster.map_shared_rank(reinterpret_cast<float4*>(&sm_acc[hg][4 * c4]), r);
      }
    }
    float M = -INFINITY;
#pragma unroll
    for (int r = 0; r < kMaxCluster; ++r)
      if (r < C) M = fmaxf(M, ml[r].x);
    float L = 0.0f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int r = 0; r < kMaxCluster; ++r) {
      if (r < C) {
        const float w = ml[r].x == -INFINITY ? 0.0f : exp2f(ml[r].x - M);  // idle block: 0
        L += w * ml[r].y;
        acc.x += w * a[r].x;
        acc.y += w * a[r].y;
        acc.z += w * a[r].z;
        acc.w += w * a[r].w;
      }
    }
    const float inv = 1.0f / L;  // NaN for a bad block anywhere in the sequence
    float* out = p.out + ((int64_t)seq * p.n_heads + kvh * G + hg) * D + 4 * c4;
    out[0] = acc.x * inv;
    out[1] = acc.y * inv;
    out[2] = acc.z * inv;
    out[3] = acc.w * inv;
  }
  cluster.sync();  // no block leaves while a peer may still read its shared memory
}

template <int D, bool T3>
Status set_attributes() {
  static_assert(cluster_smem_bytes<D>() >= (size_t)kCWarps * 8 * D * sizeof(float),
                "merge scratch");
  auto* fn = paged_decode_cluster_kernel<D, T3>;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
      fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)cluster_smem_bytes<D>()));
  FRUGAL_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(fn, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  return Status::Ok();
}

cudaLaunchConfig_t cluster_config(dim3 grid, int c, size_t smem, cudaStream_t stream,
                                  cudaLaunchAttribute (&attr)[2]) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(kCWarps * 32);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = (unsigned)c;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = programmatic_launch() ? 2 : 1;
  return cfg;
}

// Clusters of size c resident at once on the device (0: that size cannot run), cached per
// instantiation and size (the device is fixed for the process).
template <int D, bool T3>
Result<int> active_clusters_d(int c) {
  static std::atomic<int> cache[kMaxCluster + 1] = {};  // value + 1; 0 = not asked yet
  const int known = cache[c].load(std::memory_order_relaxed);
  if (known > 0) return known - 1;
  FRUGAL_RETURN_IF_ERROR((set_attributes<D, T3>()));
  cudaLaunchAttribute attr[2];
  const cudaLaunchConfig_t cfg =
      cluster_config(dim3(c, 1, 1), c, cluster_smem_bytes<D>(), nullptr, attr);
  int n = 0;
  const cudaError_t err =
      cudaOccupancyMaxActiveClusters(&n, paged_decode_cluster_kernel<D, T3>, &cfg);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    n = 0;  // e.g. no cluster support: the caller takes the split kernel
  }
  cache[c].store(n + 1, std::memory_order_relaxed);
  return n;
}

template <int D, bool T3>
Status launch_d(const PagedDecodeParams& p, int c, cudaStream_t stream) {
  FRUGAL_RETURN_IF_ERROR((set_attributes<D, T3>()));
  int shift = -1;  // log2(block_size) when it is a power of two (the pool's rule), else -1
  if ((p.block_size & (p.block_size - 1)) == 0)
    for (shift = 0; (1 << shift) < p.block_size; ++shift) {}
  cudaLaunchAttribute attr[2];
  const cudaLaunchConfig_t cfg = cluster_config(dim3(c, p.n_kv_heads, p.n_seqs), c,
                                                cluster_smem_bytes<D>(), stream, attr);
  const cudaError_t err = cudaLaunchKernelEx(&cfg, paged_decode_cluster_kernel<D, T3>, p, shift);
  if (err != cudaSuccess) (void)cudaGetLastError();
  FRUGAL_CUDA_RETURN_IF_ERROR(err);
  return Status::Ok();
}

}  // namespace

Result<int> paged_decode_cluster_active(int head_dim, int group, int cluster_size) {
  if (cluster_size < 1 || cluster_size > kMaxCluster)
    return InvalidArgument("paged_decode_cluster_active: cluster size " +
                           std::to_string(cluster_size) + " outside 1..16");
  const bool t3 = group <= 4;
  if (head_dim == 64)
    return t3 ? active_clusters_d<64, true>(cluster_size) : active_clusters_d<64, false>(cluster_size);
  if (head_dim == 128)
    return t3 ? active_clusters_d<128, true>(cluster_size)
              : active_clusters_d<128, false>(cluster_size);
  return Unsupported("paged_attention_decode (cluster): head_dim " + std::to_string(head_dim));
}

Status launch_paged_decode_cluster(const PagedDecodeParams& p, const PagedDecodePlan& plan,
                                   cudaStream_t stream) {
  const int c = plan.cluster_size;
  if (c < 1 || c > kMaxCluster)
    return InvalidArgument("paged_attention_decode (cluster): cluster size " + std::to_string(c));
  const bool t3 = p.n_heads / p.n_kv_heads <= 4;
  if (p.head_dim == 64)
    return t3 ? launch_d<64, true>(p, c, stream) : launch_d<64, false>(p, c, stream);
  if (p.head_dim == 128)
    return t3 ? launch_d<128, true>(p, c, stream) : launch_d<128, false>(p, c, stream);
  return Unsupported("paged_attention_decode (cluster): head_dim " + std::to_string(p.head_dim));
}

}  // namespace frugal::cuda
