// Embedding lookup, RoPE table, RoPE + paged KV write, fused SwiGLU, bf16 conversion, argmax,
// random fills (see model_ops.cuh).
#include <cmath>
#include <string>

#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/model_ops.cuh"

namespace frugal::cuda {

namespace {

unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t b) {
  return __uint_as_float((uint32_t)b << 16);
}

// Round to nearest even, NaN kept NaN (the same rule as base/half.h f32_to_bf16).
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

// grid (n tokens), 256 threads: one row per block.
__global__ void embedding_kernel(EmbeddingParams p) {
  wait_prior_grid();
  const int t = blockIdx.x;
  const int32_t id = p.tokens[t];
  float* xr = p.x + (int64_t)t * p.dim;
  if (id < 0 || id >= p.vocab) {
    for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) xr[i] = NAN;
  } else {
    const uint16_t* row = p.table + (int64_t)id * p.dim;
    for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) xr[i] = bf16_bits_to_f32(row[i]);
  }
  if (threadIdx.x == 0 && p.positions && p.seq_lens) p.seq_lens[t] = p.positions[t] + 1;
}

__global__ void rope_table_kernel(float2* table, int64_t n_pos, int head_dim, double base) {
  const int half = head_dim / 2;
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= n_pos * half) return;
  const int i = (int)(idx % half);
  const int64_t pos = idx / half;
  const double theta = (double)pos * pow(base, -2.0 * i / (double)head_dim);
  double s, c;
  sincos(theta, &s, &c);
  table[idx] = make_float2((float)c, (float)s);
}

// One thread per (token, head of q|k, pair); K-head threads also round their pair of V.
__global__ void rope_kv_write_kernel(RopeKvWriteParams p) {
  wait_prior_grid();
  const int half = p.head_dim / 2;
  const int heads = p.n_heads + p.n_kv_heads;
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= (int64_t)p.n * heads * half) return;
  const int i = (int)(idx % half);
  const int h = (int)((idx / half) % heads);
  const int t = (int)(idx / ((int64_t)half * heads));
  const int32_t pos = p.positions[t];
  const bool pos_ok = pos >= 0 && pos < p.rope_positions;
  const float2 cs = pos_ok ? p.rope[(int64_t)pos * half + i] : make_float2(NAN, NAN);
  const int ia = p.rope_half ? i : 2 * i;
  const int ib = p.rope_half ? i + half : 2 * i + 1;
  const float* row = p.qkv + (int64_t)t * p.qkv_stride + (int64_t)h * p.head_dim;
  const float a = row[ia], b = row[ib];
  const float ra = a * cs.x - b * cs.y, rb = a * cs.y + b * cs.x;
  if (h < p.n_heads) {
    float* q = p.q_out + ((int64_t)t * p.n_heads + h) * p.head_dim;
    q[ia] = ra;
    q[ib] = rb;
    return;
  }
  if (!pos_ok) return;
  const int kvh = h - p.n_heads;
  const int row_idx = p.table_row >= 0 ? p.table_row : t;
  const int32_t blk =
      p.block_tables[(int64_t)row_idx * p.max_blocks_per_seq + pos / p.block_size];
  if (blk < 0 || blk >= p.n_blocks) return;
  const int64_t off =
      (((int64_t)blk * p.block_size + pos % p.block_size) * p.n_kv_heads + kvh) * p.head_dim;
  p.k_cache[off + ia] = f32_to_bf16_bits(ra);
  p.k_cache[off + ib] = f32_to_bf16_bits(rb);
  const float* v = row + (int64_t)p.n_kv_heads * p.head_dim;  // same head of the V section
  p.v_cache[off + ia] = f32_to_bf16_bits(v[ia]);
  p.v_cache[off + ib] = f32_to_bf16_bits(v[ib]);
}

__global__ void swiglu_fused_kernel(const float* __restrict__ gu, int64_t rows, int64_t hidden,
                                    float* out_f32, uint16_t* out_bf16) {
  wait_prior_grid();
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= rows * hidden) return;
  const int64_t r = idx / hidden, i = idx % hidden;
  const float g = gu[r * 2 * hidden + i], u = gu[r * 2 * hidden + hidden + i];
  const float o = g / (1.0f + expf(-g)) * u;
  if (out_f32) out_f32[idx] = o;
  if (out_bf16) out_bf16[idx] = f32_to_bf16_bits(o);
}

__global__ void f32_to_bf16_kernel(const float* __restrict__ src, uint16_t* __restrict__ dst,
                                   int64_t n) {
  wait_prior_grid();
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = f32_to_bf16_bits(src[i]);
}

constexpr int kArgmaxThreads = 1024;

// (value, index) with "greater value, or equal value and smaller index" winning; NaN loses.
__device__ __forceinline__ void argmax_merge(float& v, int64_t& i, float ov, int64_t oi) {
  if (ov > v || (ov == v && oi < i) || (isnan(v) && !isnan(ov))) {
    v = ov;
    i = oi;
  }
}

__global__ void __launch_bounds__(kArgmaxThreads)
    argmax_kernel(const float* __restrict__ x, int64_t n, int32_t* out, int32_t* advance) {
  wait_prior_grid();
  const int64_t r = blockIdx.x;
  const float* xr = x + r * n;
  float best = NAN;
  int64_t bi = n;  // "none"
  for (int64_t i = threadIdx.x; i < n; i += kArgmaxThreads) argmax_merge(best, bi, xr[i], i);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, off);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, off);
    argmax_merge(best, bi, ov, oi);
  }
  __shared__ float sv[kArgmaxThreads / 32];
  __shared__ int64_t si[kArgmaxThreads / 32];
  if ((threadIdx.x & 31) == 0) {
    sv[threadIdx.x >> 5] = best;
    si[threadIdx.x >> 5] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kArgmaxThreads / 32; ++w) argmax_merge(best, bi, sv[w], si[w]);
    out[r] = (bi >= n || isnan(best)) ? 0 : (int32_t)bi;
    if (advance) advance[r] += 1;
  }
}

__device__ __forceinline__ uint32_t hash64to32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return (uint32_t)x;
}

__global__ void fill_random_bf16_kernel(uint16_t* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    const uint32_t h = hash64to32(seed * 0x9e3779b97f4a7c15ull + i);
    const float u = (float)(h >> 8) * (1.0f / 16777216.0f);  // [0, 1)
    p[i] = f32_to_bf16_bits((2.0f * u - 1.0f) * scale);
  }
}

__global__ void fill_f32_kernel(float* p, size_t n, float value) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    p[i] = value;
}

}  // namespace

Status embedding_bf16(const EmbeddingParams& p, cudaStream_t stream) {
  if (!p.table || !p.tokens || !p.x) return InvalidArgument("cuda::embedding_bf16: null pointer");
  if (p.vocab < 1 || p.dim < 1 || p.n < 0)
    return InvalidArgument("cuda::embedding_bf16: vocab and dim must be >= 1, n >= 0");
  if (p.n == 0) return Status::Ok();
  FRUGAL_CUDA_RETURN_IF_ERROR(
      launch_kernel(embedding_kernel, dim3((unsigned)p.n), dim3(256), 0, stream, p));
  return Status::Ok();
}

Status rope_table(float2* table, int64_t n_pos, int head_dim, float base, cudaStream_t stream) {
  if (!table) return InvalidArgument("cuda::rope_table: null pointer");
  if (n_pos < 1 || head_dim < 2 || head_dim % 2 != 0)
    return InvalidArgument("cuda::rope_table: n_pos >= 1 and an even head_dim >= 2 needed, got " +
                           std::to_string(n_pos) + ", " + std::to_string(head_dim));
  const int64_t n = n_pos * (head_dim / 2);
  rope_table_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(table, n_pos, head_dim, (double)base);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("rope_table_kernel");
  return Status::Ok();
}

Status rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream) {
  if (!p.qkv || !p.q_out || !p.k_cache || !p.v_cache || !p.positions || !p.block_tables ||
      !p.rope)
    return InvalidArgument("cuda::rope_kv_write: null pointer");
  if (p.n < 0 || p.n_heads < 1 || p.n_kv_heads < 1 || p.head_dim < 2 || p.head_dim % 2 != 0 ||
      p.block_size < 1 || p.max_blocks_per_seq < 1 || p.n_blocks < 1 || p.rope_positions < 1)
    return InvalidArgument("cuda::rope_kv_write: bad sizes (heads " + std::to_string(p.n_heads) +
                           "/" + std::to_string(p.n_kv_heads) + ", head_dim " +
                           std::to_string(p.head_dim) + ")");
  if (p.qkv_stride < (int64_t)(p.n_heads + 2 * p.n_kv_heads) * p.head_dim)
    return InvalidArgument("cuda::rope_kv_write: qkv_stride " + std::to_string(p.qkv_stride) +
                           " < (n_heads + 2 n_kv_heads) * head_dim");
  const int64_t total = (int64_t)p.n * (p.n_heads + p.n_kv_heads) * (p.head_dim / 2);
  if (total == 0) return Status::Ok();
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(rope_kv_write_kernel, dim3(blocks_for(total, 256)),
                                            dim3(256), 0, stream, p));
  return Status::Ok();
}

Status swiglu_fused(const float* gu, int64_t rows, int64_t hidden, float* out_f32,
                    uint16_t* out_bf16, cudaStream_t stream) {
  if (!gu || (!out_f32 && !out_bf16)) return InvalidArgument("cuda::swiglu_fused: null pointer");
  if (rows < 0 || hidden < 0) return InvalidArgument("cuda::swiglu_fused: negative size");
  const int64_t n = rows * hidden;
  if (n == 0) return Status::Ok();
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(swiglu_fused_kernel, dim3(blocks_for(n, 256)),
                                            dim3(256), 0, stream, gu, rows, hidden, out_f32,
                                            out_bf16));
  return Status::Ok();
}

Status convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n, cudaStream_t stream) {
  if (!src || !dst) return InvalidArgument("cuda::convert_f32_to_bf16: null pointer");
  if (n < 0) return InvalidArgument("cuda::convert_f32_to_bf16: negative n");
  if (n == 0) return Status::Ok();
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(f32_to_bf16_kernel, dim3(blocks_for(n, 256)),
                                            dim3(256), 0, stream, src, dst, n));
  return Status::Ok();
}

Status argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out,
                   int32_t* advance_positions, cudaStream_t stream) {
  if (!x || !out) return InvalidArgument("cuda::argmax_rows: null pointer");
  if (rows < 0 || n < 1 || rows > 0x7fffffff || n > 0x7fffffff)
    return InvalidArgument("cuda::argmax_rows: rows " + std::to_string(rows) + ", n " +
                           std::to_string(n));
  if (rows == 0) return Status::Ok();
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(argmax_kernel, dim3((unsigned)rows),
                                            dim3(kArgmaxThreads), 0, stream, x, n, out,
                                            advance_positions));
  return Status::Ok();
}

Status fill_random_bf16(uint16_t* p, size_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (!p && n) return InvalidArgument("cuda::fill_random_bf16: null pointer");
  if (n == 0) return Status::Ok();
  fill_random_bf16_kernel<<<(unsigned)std::min<size_t>(4096, blocks_for((int64_t)n, 256)), 256,
                            0, stream>>>(p, n, seed, scale);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("fill_random_bf16_kernel");
  return Status::Ok();
}

Status fill_f32(float* p, size_t n, float value, cudaStream_t stream) {
  if (!p && n) return InvalidArgument("cuda::fill_f32: null pointer");
  if (n == 0) return Status::Ok();
  fill_f32_kernel<<<(unsigned)std::min<size_t>(4096, blocks_for((int64_t)n, 256)), 256, 0,
                    stream>>>(p, n, value);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("fill_f32_kernel");
  return Status::Ok();
}

}  // namespace frugal::cuda
