// Fused residual-add + RMSNorm, RoPE, SwiGLU, residual add. All float32, memory-bound.
#include <string>

#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ops.cuh"

namespace frugal::cuda {

namespace {

constexpr int kNormThreads = 256;

// One block per row. Sum of squares in float per thread, then a float64 block reduction of the
// per-warp partials (the CPU op sums in float64; this keeps the two within float rounding).
__global__ void __launch_bounds__(kNormThreads)
    rmsnorm_kernel(const float* x, const float* residual, float* residual_out,
                   const float* __restrict__ w, float* y, int64_t n, float eps) {
  wait_prior_grid();
  const int64_t row = blockIdx.x;
  const float* xr = x + row * n;
  const float* rr = residual ? residual + row * n : nullptr;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += kNormThreads) {
    const float h = rr ? xr[i] + rr[i] : xr[i];
    ss += h * h;
  }
  __shared__ double warp_sums[kNormThreads / 32];
  double d = ss;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = d;
  __syncthreads();
  __shared__ float inv_s;
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int i = 0; i < kNormThreads / 32; ++i) t += warp_sums[i];
    inv_s = (float)(1.0 / sqrt(t / (double)n + (double)eps));
  }
  __syncthreads();
  const float inv = inv_s;
  float* ro = residual_out ? residual_out + row * n : nullptr;
  float* yr = y + row * n;
  for (int64_t i = threadIdx.x; i < n; i += kNormThreads) {
    const float h = rr ? xr[i] + rr[i] : xr[i];
    if (ro) ro[i] = h;
    yr[i] = h * inv * w[i];
  }
}

// One thread per (token, head, pair).
__global__ void rope_kernel(float* x, const int32_t* __restrict__ positions, int n_tokens,
                            int n_heads, int head_dim, int64_t token_stride, float base,
                            bool adjacent) {
  const int half = head_dim / 2;
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t total = (int64_t)n_tokens * n_heads * half;
  if (idx >= total) return;
  const int i = (int)(idx % half);
  const int h = (int)((idx / half) % n_heads);
  const int64_t t = idx / ((int64_t)half * n_heads);
  const double theta =
      (double)positions[t] * pow((double)base, -2.0 * i / (double)head_dim);
  double sd, cd;
  sincos(theta, &sd, &cd);
  const float c = (float)cd, s = (float)sd;
  float* v = x + t * token_stride + (int64_t)h * head_dim;
  const int ia = adjacent ? 2 * i : i;
  const int ib = adjacent ? 2 * i + 1 : i + half;
  const float a = v[ia], b = v[ib];
  v[ia] = a * c - b * s;
  v[ib] = a * s + b * c;
}

__global__ void swiglu_kernel(const float* gate, const float* up, float* out, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = gate[i];
  out[i] = g / (1.0f + expf(-g)) * up[i];
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  out[i] = a[i] + b[i];
}

unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

}  // namespace

Status rmsnorm(const RmsNormParams& p, cudaStream_t stream) {
  if (!p.x || !p.w || !p.y) return InvalidArgument("cuda::rmsnorm: null pointer");
  if (p.n < 1 || p.rows < 1 || p.rows > 0x7fffffff)
    return InvalidArgument("cuda::rmsnorm: n and rows must be >= 1, got n=" +
                           std::to_string(p.n) + " rows=" + std::to_string(p.rows));
  if (p.y == p.w) return InvalidArgument("cuda::rmsnorm: y must not alias w");
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(rmsnorm_kernel, dim3((unsigned)p.rows),
                                            dim3(kNormThreads), 0, stream, p.x, p.residual,
                                            p.residual_out, p.w, p.y, p.n, p.eps));
  return Status::Ok();
}

Status rope(const RopeParams& p, cudaStream_t stream) {
  if (!p.x || !p.positions) return InvalidArgument("cuda::rope: null pointer");
  if (p.n_tokens < 0 || p.n_heads < 0 || p.head_dim < 0)
    return InvalidArgument("cuda::rope: negative size");
  const int64_t stride = p.token_stride ? p.token_stride : (int64_t)p.n_heads * p.head_dim;
  if (stride < (int64_t)p.n_heads * p.head_dim)
    return InvalidArgument("cuda::rope: token_stride " + std::to_string(stride) +
                           " < n_heads * head_dim");
  const int64_t total = (int64_t)p.n_tokens * p.n_heads * (p.head_dim / 2);
  if (total == 0) return Status::Ok();
  rope_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(p.x, p.positions, p.n_tokens,
                                                          p.n_heads, p.head_dim, stride, p.base,
                                                          p.style == RopeStyle::kAdjacent);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("rope_kernel");
  return Status::Ok();
}

Status swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
  if (!gate || !up || !out) return InvalidArgument("cuda::swiglu: null pointer");
  if (n < 0) return InvalidArgument("cuda::swiglu: negative n");
  if (n == 0) return Status::Ok();
  swiglu_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(gate, up, out, n);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("swiglu_kernel");
  return Status::Ok();
}

Status add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  if (!a || !b || !out) return InvalidArgument("cuda::add: null pointer");
  if (n < 0) return InvalidArgument("cuda::add: negative n");
  if (n == 0) return Status::Ok();
  add_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(a, b, out, n);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("add_kernel");
  return Status::Ok();
}

}  // namespace frugal::cuda
