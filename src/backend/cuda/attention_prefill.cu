// Causal paged prefill attention with WMMA (see attention.cuh, PagedPrefillParams).
#include <cuda_bf16.h>
#include <mma.h>

#include <string>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/check.cuh"

namespace frugal::cuda {

namespace {

using namespace nvcuda;

constexpr int kBQ = 64;     // query rows per block (16 per warp)
constexpr int kBK = 64;     // positions per K/V tile
constexpr int kWarps = 4;
constexpr float kLog2e = 1.4426950408889634f;

template <int D>
constexpr size_t smem_bytes() {
  constexpr int SW = D > kBK ? D : kBK;  // float row width of the per-warp scratch
  return (size_t)(kBQ * D + 2 * kBK * D + kWarps * 16 * kBK) * 2 + (size_t)kWarps * 16 * SW * 4;
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32) prefill_flash_kernel(PagedPrefillParams p) {
  constexpr int SW = D > kBK ? D : kBK;
  constexpr int HALF = D / 2;  // each lane owns half of one row of O
  extern __shared__ __align__(128) unsigned char smem[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem);  // [kBQ][D]
  __nv_bfloat16* sK = sQ + kBQ * D;                             // [kBK][D]
  __nv_bfloat16* sV = sK + kBK * D;                             // [kBK][D]
  __nv_bfloat16* sP = sV + kBK * D;                             // [kWarps][16][kBK]
  float* sS = reinterpret_cast<float*>(sP + kWarps * 16 * kBK);  // [kWarps][16][SW]

  const int t0 = blockIdx.x * kBQ, h = blockIdx.y;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const float qscale = (p.scale > 0.0f ? p.scale : rsqrtf((float)D)) * kLog2e;

  for (int i = threadIdx.x; i < kBQ * D; i += kWarps * 32) {
    const int t = t0 + i / D;
    const float v =
        t < p.n_tokens ? p.q[((int64_t)t * p.n_heads + h) * D + i % D] * qscale : 0.0f;
    sQ[i] = __float2bfloat16_rn(v);
  }
  const int r = lane >> 1, half = lane & 1;
  const int qrow = t0 + warp * 16 + r;
  const int qpos = p.pos0 + qrow;
  const bool row_ok = qrow < p.n_tokens;
  float m = -INFINITY, l = 0.0f, o[HALF];
#pragma unroll
  for (int i = 0; i < HALF; ++i) o[i] = 0.0f;
  const int last_pos = p.pos0 + min(t0 + kBQ, p.n_tokens) - 1;
  const int n_tiles = last_pos / kBK + 1;
  float* S = sS + warp * 16 * SW;
  __nv_bfloat16* P = sP + warp * 16 * kBK;

  for (int kt = 0; kt < n_tiles; ++kt) {
    __syncthreads();  // sQ written (first tile); every warp done with the previous sK / sV
    for (int i = threadIdx.x; i < kBK * (D / 8); i += kWarps * 32) {
      const int kp = kt * kBK + i / (D / 8);
      uint4 kv = make_uint4(0, 0, 0, 0), vv = kv;
      if (kp <= last_pos) {
        const int32_t blk = p.block_table[kp / p.block_size];
        if (blk >= 0 && blk < p.n_blocks) {
          const int64_t off =
              (((int64_t)blk * p.block_size + kp % p.block_size) * p.n_kv_heads + kvh) * D +
              (i % (D / 8)) * 8;
          kv = *reinterpret_cast<const uint4*>(p.k_cache + off);
          vv = *reinterpret_cast<const uint4*>(p.v_cache + off);
        } else {
          kv = vv = make_uint4(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);  // NaN
        }
      }
      reinterpret_cast<uint4*>(sK)[i] = kv;
      reinterpret_cast<uint4*>(sV)[i] = vv;
    }
    __syncthreads();

    // S = Q K^T for this warp's 16 rows x kBK positions (scaled, base-2 logits)
    {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kBK / 16];
#pragma unroll
      for (int j = 0; j < kBK / 16; ++j) wmma::fill_fragment(acc[j], 0.0f);
#pragma unroll
      for (int k = 0; k < D; k += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::load_matrix_sync(a, sQ + warp * 16 * D + k, D);
#pragma unroll
        for (int j = 0; j < kBK / 16; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
          wmma::load_matrix_sync(b, sK + j * 16 * D + k, D);
          wmma::mma_sync(acc[j], a, b, acc[j]);
        }
      }
#pragma unroll
      for (int j = 0; j < kBK / 16; ++j)
        wmma::store_matrix_sync(S + j * 16, acc[j], SW, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax: lane (r, half) takes columns [half * 32, half * 32 + 32) of row r.
    float sc[kBK / 2];
    float mx = -INFINITY;
#pragma unroll
    for (int c = 0; c < kBK / 2; ++c) {
      const int col = half * (kBK / 2) + c;
      const int kp = kt * kBK + col;
      const float s = (row_ok && kp <= qpos) ? S[r * SW + col] : -INFINITY;
      sc[c] = s;
      mx = fmaxf(mx, s);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m, mx);
    const float corr = m_new == -INFINITY ? 1.0f : exp2f(m - m_new);
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < kBK / 2; ++c) {
      const float pr = m_new == -INFINITY ? 0.0f : exp2f(sc[c] - m_new);
      sum += pr;
      P[r * kBK + half * (kBK / 2) + c] = __float2bfloat16_rn(pr);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * corr + sum;
    m = m_new;
#pragma unroll
    for (int i = 0; i < HALF; ++i) o[i] *= corr;
    __syncwarp();

    // O += P V (this tile's product into the scratch, then added to the lane's registers)
    {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[D / 16];
#pragma unroll
      for (int j = 0; j < D / 16; ++j) wmma::fill_fragment(acc[j], 0.0f);
#pragma unroll
      for (int k = 0; k < kBK; k += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::load_matrix_sync(a, P + k, kBK);
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
          wmma::load_matrix_sync(b, sV + k * D + j * 16, D);
          wmma::mma_sync(acc[j], a, b, acc[j]);
        }
      }
#pragma unroll
      for (int j = 0; j < D / 16; ++j)
        wmma::store_matrix_sync(S + j * 16, acc[j], SW, wmma::mem_row_major);
    }
    __syncwarp();
#pragma unroll
    for (int i = 0; i < HALF; ++i) o[i] += S[r * SW + half * HALF + i];
    __syncwarp();
  }
  if (row_ok) {
    const float inv = 1.0f / l;
    float* dst = p.out + ((int64_t)qrow * p.n_heads + h) * D + half * HALF;
#pragma unroll
    for (int i = 0; i < HALF; i += 4)
      *reinterpret_cast<float4*>(dst + i) =
          make_float4(o[i] * inv, o[i + 1] * inv, o[i + 2] * inv, o[i + 3] * inv);
  }
}

template <int D>
Status launch(const PagedPrefillParams& p, cudaStream_t stream) {
  constexpr size_t smem = smem_bytes<D>();
  if (smem > 48 * 1024)
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
        prefill_flash_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  const dim3 grid((unsigned)((p.n_tokens + kBQ - 1) / kBQ), (unsigned)p.n_heads);
  prefill_flash_kernel<D><<<grid, kWarps * 32, smem, stream>>>(p);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("prefill_flash_kernel");
  return Status::Ok();
}

}  // namespace

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
  if ((reinterpret_cast<uintptr_t>(p.k_cache) | reinterpret_cast<uintptr_t>(p.v_cache) |
       reinterpret_cast<uintptr_t>(p.out)) % 16)
    return InvalidArgument(w + ": caches and out must be 16-byte aligned");
  if (p.n_tokens == 0) return Status::Ok();
  if (p.head_dim == 64) return launch<64>(p, stream);
  if (p.head_dim == 128) return launch<128>(p, stream);
  return Unsupported(w + ": head_dim " + std::to_string(p.head_dim) + " (64 or 128)");
}

}  // namespace frugal::cuda
