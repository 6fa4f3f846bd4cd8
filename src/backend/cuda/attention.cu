// Paged decode attention: split-K kernel, merge kernel, naive reference (see attention.cuh).
#include <algorithm>
#include <cmath>
#include <string>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_decode_mma.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"

namespace frugal::cuda {

namespace {

constexpr int kThreads = 128;  // 4 warps per split block
constexpr int kUnroll = 4;     // positions per row group whose K/V loads are issued together
constexpr int kMergeThreads = 256;
constexpr int kMergeInFlight = 4;  // acc rows (16 B) per merge thread loaded before the weights
constexpr int kTableCache = 256;  // block-table entries a split block stages in shared memory
constexpr int kMaxSplits = 8192;  // merge kernel's shared memory: (kMaxSplits + 256) floats
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void bf16x8(const uint4 v, float* f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// Workspace layout: acc [n_seqs, n_heads, n_splits, D] floats, then ml [n_seqs, n_heads,
// n_splits, 2] floats (base-2 running max of scaled scores, sum of exponentials).
//
// Block: kThreads threads split into row groups of D/8 lanes; each lane owns 8 dimensions
// (one 16-byte load of K and of V per position). Row group r of the block handles positions
// start + r, start + r + NRG, ... (kUnroll per iteration, loads issued together), keeping an online
// softmax state per query head of the group. The NRG states are merged in shared memory.
template <int D, int MAXG>
__global__ void __launch_bounds__(kThreads, MAXG <= 4 ? 4 : 2)
    paged_decode_split_kernel(PagedDecodeParams p, int split_size, int n_splits,
                              int block_shift) {
  wait_prior_grid();
  constexpr int LANES = D / 8;              // lanes per row group
  constexpr int RPW = 32 / LANES;           // row groups per warp
  constexpr int NRG = (kThreads / 32) * RPW;
  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.n_heads / p.n_kv_heads;
  const int seq_len = p.seq_lens[seq];
  const int start = split * split_size;
  if (start >= seq_len) return;  // the merge reads only splits that start inside the sequence
  const int end = min(seq_len, start + split_size);

  const int lane = threadIdx.x & 31;
  const int sub = lane / LANES;            // row group within the warp
  const int dl = (lane % LANES) * 8;       // first dimension of this lane
  const int rg = (threadIdx.x >> 5) * RPW + sub;
  const float qscale = (p.scale > 0.0f ? p.scale : rsqrtf((float)D)) * kLog2e;

  float q[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
      q[g][j] = g < G ? p.q[((int64_t)seq * p.n_heads + kvh * G + g) * D + dl + j] * qscale : 0.f;
  }
  float m[MAXG], l[MAXG], acc[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[g][j] = 0.0f;
  }
  const int32_t* table =
      p.block_tables + (p.shared_block_table ? 0 : (int64_t)seq * p.max_blocks_per_seq);
  const int64_t head_off = (int64_t)kvh * D + dl;
  bool bad = false;
  // The split's block-table entries, staged once so the position loop has no dependent
  // table load (falls back to global reads when the split spans more than kTableCache blocks).
  __shared__ int32_t sm_table[kTableCache];
  const int first_bi = start / p.block_size;
  const int n_bi = (end - 1) / p.block_size - first_bi + 1;
  const bool staged = n_bi <= kTableCache;
  if (staged)
    for (int i = threadIdx.x; i < n_bi; i += kThreads) sm_table[i] = table[first_bi + i];
  __syncthreads();

  for (int base = start; base < end; base += kUnroll * NRG) {
    uint4 kv[kUnroll], vv[kUnroll];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int pos = base + u * NRG + rg;
      valid[u] = pos < end;
      kv[u] = vv[u] = make_uint4(0, 0, 0, 0);
      if (valid[u]) {
        const int bi = block_shift >= 0 ? pos >> block_shift : pos / p.block_size;
        const int slot = block_shift >= 0 ? pos & (p.block_size - 1) : pos % p.block_size;
        const int32_t blk = staged ? sm_table[bi - first_bi] : table[bi];
        if (blk < 0 || blk >= p.n_blocks) {
          bad = true;
          valid[u] = false;
        } else {
          const int64_t row =
              (((int64_t)blk * p.block_size + slot) * p.n_kv_heads) * D + head_off;
          kv[u] = __ldcs(reinterpret_cast<const uint4*>(p.k_cache + row));
          vv[u] = __ldcs(reinterpret_cast<const uint4*>(p.v_cache + row));
        }
      }
    }
    // Scores of the kUnroll positions for every query head of the group (-inf where invalid).
    float sc[kUnroll][MAXG];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kf[8];
      bf16x8(kv[u], kf);
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        if (g >= G) break;
        float d = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) d += q[g][j] * kf[j];
#pragma unroll
        for (int off = LANES / 2; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);
        sc[u][g] = valid[u] ? d : -INFINITY;
      }
    }
    // One online-softmax step per tile: a single rescale of the state, then the tile's terms.
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      if (g >= G) break;
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) mx = fmaxf(mx, sc[u][g]);
      if (mx == -INFINITY) continue;  // nothing valid yet
      const float corr = exp2f(m[g] - mx);
      l[g] *= corr;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[g][j] *= corr;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float pr = exp2f(sc[u][g] - mx);
        float vf[8];
        bf16x8(vv[u], vf);
        l[g] += pr;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[g][j] += pr * vf[j];
      }
      m[g] = mx;
    }
  }

  // Merge the NRG row-group states of the block.
  __shared__ float sm_m[NRG][MAXG], sm_l[NRG][MAXG];
  __shared__ float sm_acc[NRG][MAXG][D];
  const bool any_bad = __syncthreads_or(bad);
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    if (g >= G) break;
    if (lane % LANES == 0) {
      sm_m[rg][g] = m[g];
      sm_l[rg][g] = l[g];
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) sm_acc[rg][g][dl + j] = acc[g][j];
  }
  __syncthreads();
  const int64_t n_heads = p.n_heads;
  float* ws_acc = static_cast<float*>(p.workspace);
  float* ws_ml = ws_acc + (int64_t)p.n_seqs * n_heads * n_splits * D;
  for (int idx = threadIdx.x; idx < G * D; idx += kThreads) {
    const int g = idx / D, d = idx % D;
    float M = -INFINITY;
    for (int r = 0; r < NRG; ++r) M = fmaxf(M, sm_m[r][g]);
    float L = 0.0f, A = 0.0f;
    if (M != -INFINITY) {
      for (int r = 0; r < NRG; ++r) {
        const float w = exp2f(sm_m[r][g] - M);
        L += sm_l[r][g] * w;
        A += sm_acc[r][g][d] * w;
      }
    }
    if (any_bad) L = NAN;
    const int64_t part = ((int64_t)seq * n_heads + kvh * G + g) * n_splits + split;
    ws_acc[part * D + d] = A;
    if (d == 0) {
      ws_ml[part * 2] = M;
      ws_ml[part * 2 + 1] = L;
    }
  }
  if (!p.split_counters) return;

  // Fused merge: the last block of this (sequence, KV head) to finish combines the partials of
  // its G query heads (the merge kernel's arithmetic). Partials of other blocks are read with
  // L2 loads (__ldcg): this block's L1 never held them.
  __shared__ int sm_last;
  __threadfence();  // this thread's partials visible device-wide before the ticket
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t* ctr = p.split_counters + (int64_t)seq * p.n_kv_heads + kvh;
    const int used = (seq_len + split_size - 1) / split_size;
    const int ticket = atomicAdd(ctr, 1);
    sm_last = ticket == used - 1;
    if (sm_last) *ctr = 0;  // every block of this (seq, head) has taken its ticket
  }
  __syncthreads();
  if (!sm_last) return;
  __threadfence();
  const int used = (seq_len + split_size - 1) / split_size;
  float* wts = &sm_acc[0][0][0];  // [G][used] weights; G * used <= NRG * MAXG * D (host check)
  __shared__ float sm_L[MAXG];
  const int warp = threadIdx.x >> 5;
  for (int g = warp; g < G; g += kThreads / 32) {
    const int64_t first = ((int64_t)seq * n_heads + kvh * G + g) * n_splits;
    float M = -INFINITY;
    for (int i = lane; i < used; i += 32) M = fmaxf(M, __ldcg(ws_ml + (first + i) * 2));
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));
    float L = 0.0f;
    for (int i = lane; i < used; i += 32) {
      const float2 ml = __ldcg(reinterpret_cast<const float2*>(ws_ml) + first + i);
      const float w = M == -INFINITY ? 0.0f : exp2f(ml.x - M);
      wts[g * used + i] = w;
      L += w * ml.y;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) L += __shfl_xor_sync(0xffffffffu, L, off);
    if (lane == 0) sm_L[g] = L;
  }
  __syncthreads();
  // Thread per 4 dimensions of one head: 16-byte loads, 8 splits in flight.
  for (int idx = threadIdx.x; idx < G * D / 4; idx += kThreads) {
    const int g = idx / (D / 4), d = (idx % (D / 4)) * 4;
    const int64_t first = ((int64_t)seq * n_heads + kvh * G + g) * n_splits;
    const float4* src = reinterpret_cast<const float4*>(ws_acc + first * D + d);
    const float* wg = wts + g * used;
    float4 acc4[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) acc4[k] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int i0 = 0; i0 < used; i0 += 8) {
      float4 v[8];
#pragma unroll
      for (int k = 0; k < 8; ++k)
        v[k] = i0 + k < used ? __ldcg(src + (int64_t)(i0 + k) * (D / 4)) : make_float4(0, 0, 0, 0);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float wk = i0 + k < used ? wg[i0 + k] : 0.0f;
        acc4[k].x += wk * v[k].x;
        acc4[k].y += wk * v[k].y;
        acc4[k].z += wk * v[k].z;
        acc4[k].w += wk * v[k].w;
      }
    }
#pragma unroll
    for (int k = 1; k < 8; ++k) {
      acc4[0].x += acc4[k].x;
      acc4[0].y += acc4[k].y;
      acc4[0].z += acc4[k].z;
      acc4[0].w += acc4[k].w;
    }
    const float inv = 1.0f / sm_L[g];
    float4* o = reinterpret_cast<float4*>(p.out + ((int64_t)seq * n_heads + kvh * G + g) * D + d);
    *o = make_float4(acc4[0].x * inv, acc4[0].y * inv, acc4[0].z * inv, acc4[0].w * inv);
  }
}

// grid (n_heads, n_seqs), kMergeThreads threads: out = sum_i w_i acc_i / sum_i w_i l_i with
// w_i = 2^(m_i - M). Thread (group, c) owns dimensions 4c..4c+3 of splits group, group + NG, ...
// (NG = kMergeThreads / (D / 4) split groups, 16-byte loads); its first kMergeInFlight acc rows
// are loaded before M and the weights are known, so at batch 1 (tens of splits) the partials
// cost one memory latency, not one per loop step. Dynamic shared memory: n_splits weights.
template <int D>
__global__ void __launch_bounds__(kMergeThreads)
    paged_decode_merge_kernel(PagedDecodeParams p, int split_size, int n_splits,
                              bool early_launch) {
  // allow_dependent_launch() only for small grids (early_launch: the blocks fit on the SMs at
  // once, batch 1): for every grid the next kernel's blocks took SM slots early and the d 64
  // batch-64 A/B got 5-13 % slower (2026-11-30, frugal_cuda_bench graph + PDL).
  wait_prior_grid();
  if (early_launch) allow_dependent_launch();
  constexpr int C = D / 4;               // float4 columns of a row
  constexpr int NG = kMergeThreads / C;  // split groups
  constexpr int IN = kMergeInFlight;
  extern __shared__ float w[];           // [n_splits]
  __shared__ float red[kMergeThreads / 32];
  __shared__ float4 part[NG][C];
  __shared__ float bcast[2];
  const int h = blockIdx.x, seq = blockIdx.y, tid = threadIdx.x, lane = tid & 31;
  const int grp = tid / C, c = tid % C;
  const int used = (p.seq_lens[seq] + split_size - 1) / split_size;
  const int64_t first = ((int64_t)seq * p.n_heads + h) * n_splits;
  const float* ws_acc = static_cast<const float*>(p.workspace);
  const float2* ws_ml =
      reinterpret_cast<const float2*>(ws_acc + (int64_t)p.n_seqs * p.n_heads * n_splits * D);
  const float4* acc4 = reinterpret_cast<const float4*>(ws_acc + first * D) + c;

  float4 a[IN];  // the first round of acc rows, in flight during steps 1 and 2
#pragma unroll
  for (int k = 0; k < IN; ++k) {
    const int i = grp + k * NG;
    a[k] = i < used ? acc4[(int64_t)i * C] : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  // 1. M = max of the partial maxima
  const float2 ml0 = tid < used ? ws_ml[first + tid] : make_float2(-INFINITY, 0.0f);
  float x = ml0.x;
  for (int i = tid + kMergeThreads; i < used; i += kMergeThreads) x = fmaxf(x, ws_ml[first + i].x);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
  if (lane == 0) red[tid >> 5] = x;
  __syncthreads();
  if (tid == 0) {
    float M = -INFINITY;
    for (int i = 0; i < kMergeThreads / 32; ++i) M = fmaxf(M, red[i]);
    bcast[0] = M;
  }
  __syncthreads();  // bcast[0] set; red[] free again
  const float M = bcast[0];
  // 2. weights and L = sum w_i l_i
  float lsum = 0.0f;
  if (tid < used) {
    const float wi = exp2f(ml0.x - M);
    w[tid] = wi;
    lsum = wi * ml0.y;
  }
  for (int i = tid + kMergeThreads; i < used; i += kMergeThreads) {
    const float2 ml = ws_ml[first + i];
    const float wi = exp2f(ml.x - M);
    w[i] = wi;
    lsum += wi * ml.y;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) lsum += __shfl_xor_sync(0xffffffffu, lsum, off);
  if (lane == 0) red[tid >> 5] = lsum;
  __syncthreads();  // w[] and red[] complete
  // 3. this thread's weighted sum: the first round from registers, then rounds of IN loads
  float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
  auto add = [&](const float4& v, int i) {
    const float wi = w[i];
    sum.x += wi * v.x;
    sum.y += wi * v.y;
    sum.z += wi * v.z;
    sum.w += wi * v.w;
  };
#pragma unroll
  for (int k = 0; k < IN; ++k)
    if (grp + k * NG < used) add(a[k], grp + k * NG);
  for (int i0 = grp + IN * NG; i0 < used; i0 += IN * NG) {
#pragma unroll
    for (int k = 0; k < IN; ++k) {
      const int i = i0 + k * NG;
      a[k] = i < used ? acc4[(int64_t)i * C] : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int k = 0; k < IN; ++k)
      if (i0 + k * NG < used) add(a[k], i0 + k * NG);
  }
  part[grp][c] = sum;
  if (tid == 0) {
    float L = 0.0f;
    for (int i = 0; i < kMergeThreads / 32; ++i) L += red[i];
    bcast[1] = L;
  }
  __syncthreads();
  if (tid < C) {
    float4 t = part[0][tid];
    for (int g = 1; g < NG; ++g) {
      const float4 u = part[g][tid];
      t.x += u.x;
      t.y += u.y;
      t.z += u.z;
      t.w += u.w;
    }
    const float inv_l = 1.0f / bcast[1];
    float* o = p.out + ((int64_t)seq * p.n_heads + h) * D + 4 * tid;
    o[0] = t.x * inv_l;
    o[1] = t.y * inv_l;
    o[2] = t.z * inv_l;
    o[3] = t.w * inv_l;
  }
}

// grid (n_heads, n_seqs), head_dim threads; float64 online softmax, positions in order.
__global__ void paged_decode_reference_kernel(PagedDecodeParams p) {
  const int h = blockIdx.x, seq = blockIdx.y, d = threadIdx.x, D = p.head_dim;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const double scale = p.scale > 0.0f ? (double)p.scale : 1.0 / sqrt((double)D);
  const double qd = p.q[((int64_t)seq * p.n_heads + h) * D + d];
  extern __shared__ double red[];  // [D]
  double m = -INFINITY, l = 0.0, acc = 0.0;
  bool bad = false;
  const int seq_len = p.seq_lens[seq];
  for (int pos = 0; pos < seq_len; ++pos) {
    const int64_t trow = p.shared_block_table ? 0 : (int64_t)seq * p.max_blocks_per_seq;
    const int32_t blk = p.block_tables[trow + pos / p.block_size];
    if (blk < 0 || blk >= p.n_blocks) { bad = true; break; }
    const int64_t row =
        (((int64_t)blk * p.block_size + pos % p.block_size) * p.n_kv_heads + kvh) * D;
    red[d] = qd * (double)__uint_as_float((uint32_t)p.k_cache[row + d] << 16);
    __syncthreads();
    if (d == 0) {
      double s = 0.0;
      for (int i = 0; i < D; ++i) s += red[i];
      red[0] = s;
    }
    __syncthreads();
    const double s = red[0] * scale;
    __syncthreads();
    const double m_new = fmax(m, s);
    const double corr = exp(m - m_new), pr = exp(s - m_new);
    l = l * corr + pr;
    acc = acc * corr + pr * (double)__uint_as_float((uint32_t)p.v_cache[row + d] << 16);
    m = m_new;
  }
  p.out[((int64_t)seq * p.n_heads + h) * D + d] = bad ? NAN : (float)(acc / l);
}

Status check_params(const PagedDecodeParams& p, const char* who, bool fast) {
  const std::string w = who;
  if (!p.q || !p.out || !p.k_cache || !p.v_cache || !p.block_tables || !p.seq_lens)
    return InvalidArgument(w + ": null pointer");
  if (p.n_seqs < 1 || p.n_heads < 1 || p.n_kv_heads < 1 || p.block_size < 1 ||
      p.max_seq_len < 1 || p.max_blocks_per_seq < 1 || p.n_blocks < 1)
    return InvalidArgument(w + ": sizes must be >= 1");
  if (p.n_heads % p.n_kv_heads != 0)
    return InvalidArgument(w + ": n_heads " + std::to_string(p.n_heads) +
                           " is not a multiple of n_kv_heads " + std::to_string(p.n_kv_heads));
  if ((int64_t)p.max_blocks_per_seq * p.block_size < p.max_seq_len)
    return InvalidArgument(w + ": block table of " + std::to_string(p.max_blocks_per_seq) +
                           " blocks cannot hold max_seq_len " + std::to_string(p.max_seq_len));
  if (fast) {
    if (p.head_dim != 64 && p.head_dim != 128)
      return Unsupported(w + ": head_dim " + std::to_string(p.head_dim) + " (64 or 128)");
    if (p.n_heads / p.n_kv_heads > 8)
      return Unsupported(w + ": query group of " + std::to_string(p.n_heads / p.n_kv_heads) +
                         " heads (at most 8)");
    if ((reinterpret_cast<uintptr_t>(p.k_cache) | reinterpret_cast<uintptr_t>(p.v_cache)) % 16)
      return InvalidArgument(w + ": K/V caches must be 16-byte aligned");
    if (p.split_size < 0 || p.split_size % 32 != 0)
      return InvalidArgument(w + ": split_size must be a multiple of 32");
  } else if (p.head_dim < 1 || p.head_dim > 1024) {
    return InvalidArgument(w + ": head_dim " + std::to_string(p.head_dim) + " outside 1..1024");
  }
  return Status::Ok();
}

// The fused merge keeps G x n_splits weights in the split kernel's partial-state shared memory
// (NRG * MAXG * D >= 4096 floats for every instantiation) and writes out as float4.
bool fused_merge_fits(const PagedDecodeParams& p, const PagedDecodePlan& plan) {
  return (int64_t)(p.n_heads / p.n_kv_heads) * plan.n_splits <= 4096 &&
         reinterpret_cast<uintptr_t>(p.out) % 16 == 0;  // it stores float4
}

template <int D, int MAXG>
Status launch_split(const PagedDecodeParams& p_in, const PagedDecodePlan& plan, cudaStream_t s) {
  PagedDecodeParams p = p_in;
  if (!fused_merge_fits(p, plan)) p.split_counters = nullptr;  // the merge kernel instead
  const dim3 grid(plan.n_splits, p.n_kv_heads, p.n_seqs);
  int shift = -1;  // log2(block_size) when it is a power of two (the pool's rule), else -1
  if ((p.block_size & (p.block_size - 1)) == 0)
    for (shift = 0; (1 << shift) < p.block_size; ++shift) {}
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(paged_decode_split_kernel<D, MAXG>, grid,
                                            dim3(kThreads), 0, s, p, plan.split_size,
                                            plan.n_splits, shift));
  return Status::Ok();
}

}  // namespace

namespace {
thread_local int t_decode_kernel = kDecodeAuto;

// kDecodeAuto takes the cluster kernel at head_dim 128 with query groups <= 4 when all
// (sequence, KV head) clusters together fill the device in one wave (blocks >= 0.95 x the
// resident-block capacity). Measured (dev/cuda/NOTES.md, attn v10b/c, H200): with every SM
// busy it beats the two-kernel mma path (8B heads, b8 and b16 at 1k/4k/16k: 1.01-1.10x);
// when the clusters leave SMs idle it loses (b1..b4 at 4k/16k: 0.6-0.9x: a cluster's blocks
// must share a GPC, so at one 192 KiB block per SM only 8 clusters of <= 9 blocks are
// co-resident, i.e. 72 SMs at batch 1); group 8 at b8 it lost at 4k/16k (0.99x / 0.93x) and
// d 64 (group 3) at b8/b64 (0.89-1.01x).
constexpr double kAutoMinFill = 0.95;

// The cluster kernel's blocks per (sequence, KV head): the largest size 16..1 at which all
// n_seqs x n_kv_heads clusters are resident at once (one wave; a cluster's blocks share a GPC,
// so this is the occupancy API's answer, not SMs / size) and every warp of the cluster gets a
// 16-position tile at max_seq_len; 0 if even 1 does not fit.
Result<int> choose_cluster_size(const PagedDecodeParams& p) {
  const int64_t units = (int64_t)p.n_seqs * p.n_kv_heads;
  const int64_t per_block = 16 * (int64_t)kDecodeClusterWarps;
  const int64_t tile_bound =
      std::max<int64_t>(1, ((int64_t)p.max_seq_len + per_block - 1) / per_block);
  for (int c = 16; c >= 1; --c) {
    if (c > tile_bound) continue;
    FRUGAL_ASSIGN_OR_RETURN(const int active,
                            paged_decode_cluster_active(p.head_dim, p.n_heads / p.n_kv_heads, c));
    if (units <= active) return c;
  }
  return 0;
}
}  // namespace

void set_decode_attention_kernel(int kernel) { t_decode_kernel = kernel; }
int decode_attention_kernel() { return t_decode_kernel; }

Result<PagedDecodePlan> plan_paged_decode(const PagedDecodeParams& p) {
  FRUGAL_RETURN_IF_ERROR(check_params(p, "plan_paged_decode", true));
  PagedDecodePlan plan;
  plan.kernel = p.kernel == kDecodeAuto ? t_decode_kernel : p.kernel;
  if (plan.kernel < kDecodeAuto || plan.kernel > kDecodeCluster)
    return InvalidArgument("plan_paged_decode: kernel " + std::to_string(plan.kernel) +
                           " (0 auto, 1 split, 2 mma, 3 cluster)");
  if (p.cluster_size != 0 && plan.kernel == kDecodeAuto) plan.kernel = kDecodeCluster;
  if (p.cluster_size != 0 && plan.kernel == kDecodeCluster) {
    if (p.cluster_size < 1 || p.cluster_size > 16)
      return InvalidArgument("plan_paged_decode: cluster_size " + std::to_string(p.cluster_size) +
                             " outside 1..16");
    FRUGAL_ASSIGN_OR_RETURN(const int active,
                            paged_decode_cluster_active(p.head_dim, p.n_heads / p.n_kv_heads,
                                                        p.cluster_size));
    if (active < 1)
      return Unsupported("plan_paged_decode: clusters of " + std::to_string(p.cluster_size) +
                         " blocks cannot run on this device");
  }
  if (plan.kernel == kDecodeAuto || plan.kernel == kDecodeCluster) {
    const bool forced = plan.kernel == kDecodeCluster;
    const int G = p.n_heads / p.n_kv_heads;
    int c = 0;  // blocks per cluster; 0: the auto rule's shapes only (head_dim 128, G <= 4)
    if (forced && p.cluster_size != 0) {
      c = p.cluster_size;
    } else if (forced || (p.head_dim == 128 && G <= 4)) {
      FRUGAL_ASSIGN_OR_RETURN(c, choose_cluster_size(p));
    }
    bool fills = false;
    if (!forced && c >= 1) {
      FRUGAL_ASSIGN_OR_RETURN(const int capacity,  // resident blocks (clusters of one)
                              paged_decode_cluster_active(p.head_dim, G, 1));
      fills = (double)c * p.n_seqs * p.n_kv_heads >= kAutoMinFill * capacity;
    }
    if (forced || fills) {
      plan.kernel = kDecodeCluster;
      plan.cluster_size = std::max(1, c);  // forced with too many clusters: blocks of one,
      plan.n_splits = plan.cluster_size;   // in waves
      plan.split_size = (p.max_seq_len + plan.cluster_size - 1) / plan.cluster_size;  // average
      return plan;                                     // no workspace
    }
    plan.kernel = kDecodeMma;
  }
  if (p.split_size > 0) {
    plan.split_size = p.split_size;
  } else {
    // One full wave: as many split blocks as the multiprocessors hold at once (occupancy of
    // the kernel that will run), so no partial second wave; at least 32 positions per split
    // (one pass of the block's row groups), a multiple of 32.
    FRUGAL_ASSIGN_OR_RETURN(const int sms, current_num_sms());
    int per_sm = 0;
    const int G = p.n_heads / p.n_kv_heads;
    const void* fn = p.head_dim == 64
                         ? (G <= 4 ? (const void*)paged_decode_split_kernel<64, 4>
                                   : (const void*)paged_decode_split_kernel<64, 8>)
                         : (G <= 4 ? (const void*)paged_decode_split_kernel<128, 4>
                                   : (const void*)paged_decode_split_kernel<128, 8>);
    if (plan.kernel == kDecodeMma) {
      FRUGAL_ASSIGN_OR_RETURN(per_sm, paged_decode_mma_blocks_per_sm(p.head_dim, G));
    } else {
      FRUGAL_CUDA_RETURN_IF_ERROR(
          cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, kThreads, 0));
    }
    const int64_t slots = (int64_t)sms * std::max(1, per_sm);
    const int64_t units = (int64_t)p.n_seqs * p.n_kv_heads;
    const int64_t splits_wanted = std::max<int64_t>(1, slots / units);
    int64_t size = (p.max_seq_len + splits_wanted - 1) / splits_wanted;
    // The mma kernel: at least 128 positions per split (4 warps x 2 tiles of 16, its pipeline
    // depth) so that short contexts at small batch give fewer, fuller blocks and fewer partials
    // to merge rather than blocks with idle warps (batch 1, ctx 1k: 8 splits of 128, not 32
    // of 32).
    const int64_t min_size = plan.kernel == kDecodeMma ? 128 : 32;
    size = std::max<int64_t>(min_size, (size + 31) / 32 * 32);
    plan.split_size = (int)size;
  }
  if ((int64_t)p.max_seq_len > (int64_t)plan.split_size * kMaxSplits) {
    if (p.split_size > 0)
      return InvalidArgument("plan_paged_decode: split_size " + std::to_string(p.split_size) +
                             " gives more than " + std::to_string(kMaxSplits) + " splits");
    plan.split_size = (int)(((int64_t)p.max_seq_len + kMaxSplits - 1) / kMaxSplits + 31) / 32 * 32;
  }
  plan.n_splits = (p.max_seq_len + plan.split_size - 1) / plan.split_size;
  plan.workspace_bytes = (size_t)p.n_seqs * p.n_heads * plan.n_splits *
                         ((size_t)p.head_dim + 2) * sizeof(float);
  return plan;
}

Status paged_attention_decode(const PagedDecodeParams& p, cudaStream_t stream) {
  FRUGAL_ASSIGN_OR_RETURN(const PagedDecodePlan plan, plan_paged_decode(p));
  if (plan.kernel == kDecodeCluster) return launch_paged_decode_cluster(p, plan, stream);
  if (!p.workspace || p.workspace_bytes < plan.workspace_bytes)
    return InvalidArgument("paged_attention_decode: workspace of " +
                           std::to_string(p.workspace_bytes) + " bytes, " +
                           std::to_string(plan.workspace_bytes) + " needed");
  const int G = p.n_heads / p.n_kv_heads;
  if (plan.kernel == kDecodeMma) {
    FRUGAL_RETURN_IF_ERROR(launch_paged_decode_mma(p, plan, stream));
  } else if (p.head_dim == 64) {
    FRUGAL_RETURN_IF_ERROR((G <= 4 ? launch_split<64, 4>(p, plan, stream)
                                   : launch_split<64, 8>(p, plan, stream)));
  } else {
    FRUGAL_RETURN_IF_ERROR((G <= 4 ? launch_split<128, 4>(p, plan, stream)
                                   : launch_split<128, 8>(p, plan, stream)));
  }
  if (plan.kernel == kDecodeSplit && p.split_counters && fused_merge_fits(p, plan))
    return Status::Ok();  // merged in-kernel
  const size_t merge_smem = (size_t)plan.n_splits * sizeof(float);  // <= kMaxSplits floats
  auto* merge = p.head_dim == 64 ? paged_decode_merge_kernel<64> : paged_decode_merge_kernel<128>;
  FRUGAL_ASSIGN_OR_RETURN(const int sms, current_num_sms());
  const bool early = plan.kernel == kDecodeMma && p.merge_early_launch &&
                     (int64_t)p.n_heads * p.n_seqs <= sms;
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(merge,
                                            dim3(p.n_heads, p.n_seqs), dim3(kMergeThreads),
                                            merge_smem, stream, p, plan.split_size,
                                            plan.n_splits, early));
  return Status::Ok();
}

Status paged_attention_decode_reference(const PagedDecodeParams& p, cudaStream_t stream) {
  FRUGAL_RETURN_IF_ERROR(check_params(p, "paged_attention_decode_reference", false));
  paged_decode_reference_kernel<<<dim3(p.n_heads, p.n_seqs), p.head_dim,
                                  p.head_dim * sizeof(double), stream>>>(p);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("paged_decode_reference_kernel");
  return Status::Ok();
}

}  // namespace frugal::cuda
