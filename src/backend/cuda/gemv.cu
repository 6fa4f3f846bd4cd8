// BF16 decode GEMV (batch 1..8). Memory-bound: the weight matrix is the traffic, x stays in L1/L2.
// Layout: W [rows, cols] bf16 row-major; x [batch, cols] f32; y [batch, rows] f32.
// One warp per row (batch <= 2) or per 4 rows (batch 3..8), grid-strided, 8 warps per block;
// each lane reads 16 bytes (8 weights) per row per step with several steps in flight; the batch
// vectors share every weight load.
#include <string>

#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"
#include "backend/cuda/ops.cuh"

namespace frugal::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ void bf16x8_to_f32(const uint4 v, float* f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// acc[j][b] += dot(8 weights of row j, x[b, elem .. elem + 8)): each x vector is loaded once
// and applied to all R rows.
template <int B, int R>
__device__ __forceinline__ void fma_rows(const uint4* wv, const float* __restrict__ x,
                                         int64_t cols, int64_t elem, float (*acc)[B]) {
  float wf[R][8];
#pragma unroll
  for (int j = 0; j < R; ++j) bf16x8_to_f32(wv[j], wf[j]);
#pragma unroll
  for (int b = 0; b < B; ++b) {
    const float4* xv = reinterpret_cast<const float4*>(x + b * cols + elem);
    const float4 x0 = __ldg(xv), x1 = __ldg(xv + 1);
#pragma unroll
    for (int j = 0; j < R; ++j)
      acc[j][b] += wf[j][0] * x0.x + wf[j][1] * x0.y + wf[j][2] * x0.z + wf[j][3] * x0.w +
                   wf[j][4] * x1.x + wf[j][5] * x1.y + wf[j][6] * x1.z + wf[j][7] * x1.w;
  }
}

// One warp per group of R consecutive rows (grid-strided). R > 1 for larger batches, where
// loading x (B vectors per weight vector) would otherwise cost more than the weights; U steps
// of 16-byte weight loads per row are issued before any is used.
template <int B, int R, int U>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gemv_bf16_kernel(const uint16_t* __restrict__ w, const float* __restrict__ x,
                     float* __restrict__ y, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x & 31;
  const int64_t vecs = cols / 8;  // 16-byte vectors per row
  const int64_t groups = (rows + R - 1) / R;
  const int64_t warp_stride = (int64_t)gridDim.x * kWarpsPerBlock;
  // Weights do not depend on the previous kernel: start pulling the first 2 KiB of this warp's
  // first rows into L2 before waiting for it (PDL; see launch.cuh).
  {
    const int64_t grp0 = (int64_t)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
    if (grp0 < groups) {
      const int64_t all_lines = (cols * 2 + 127) / 128;
      const int lines = all_lines < 16 ? (int)all_lines : 16;
#pragma unroll
      for (int j = 0; j < R; ++j)
        if (lane < lines)
          prefetch_l2(reinterpret_cast<const char*>(w + min(grp0 * R + j, rows - 1) * cols) +
                      lane * 128);
    }
  }
  wait_prior_grid();
  for (int64_t grp = (int64_t)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5); grp < groups;
       grp += warp_stride) {
    const int64_t r0 = grp * R;
    const uint4* wr[R];
#pragma unroll
    for (int j = 0; j < R; ++j)  // rows past the end re-read the last row; never written
      wr[j] = reinterpret_cast<const uint4*>(w + min(r0 + j, rows - 1) * cols);
    float acc[R][B];
#pragma unroll
    for (int j = 0; j < R; ++j)
#pragma unroll
      for (int b = 0; b < B; ++b) acc[j][b] = 0.0f;
    int64_t i = lane;
    for (; i + (U - 1) * 32 < vecs; i += U * 32) {
      uint4 wv[U][R];
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int j = 0; j < R; ++j) wv[u][j] = __ldcs(wr[j] + i + u * 32);  // read once
#pragma unroll
      for (int u = 0; u < U; ++u) fma_rows<B, R>(wv[u], x, cols, (i + u * 32) * 8, acc);
    }
    for (; i < vecs; i += 32) {
      uint4 wv[R];
#pragma unroll
      for (int j = 0; j < R; ++j) wv[j] = __ldcs(wr[j] + i);
      fma_rows<B, R>(wv, x, cols, i * 8, acc);
    }
#pragma unroll
    for (int j = 0; j < R; ++j)
#pragma unroll
      for (int b = 0; b < B; ++b)
#pragma unroll
        for (int off = 16; off > 0; off >>= 1)
          acc[j][b] += __shfl_xor_sync(0xffffffffu, acc[j][b], off);
    if (lane == 0) {
#pragma unroll
      for (int j = 0; j < R; ++j)
        if (r0 + j < rows) {
#pragma unroll
          for (int b = 0; b < B; ++b) y[b * rows + r0 + j] = acc[j][b];
        }
    }
  }
}

__global__ void gemv_bf16_reference_kernel(const uint16_t* __restrict__ w,
                                           const float* __restrict__ x, float* __restrict__ y,
                                           int64_t rows, int64_t cols, int batch) {
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= rows * batch) return;
  const int64_t b = idx / rows, r = idx % rows;
  float acc = 0.0f;
  for (int64_t c = 0; c < cols; ++c)
    acc += __uint_as_float((uint32_t)w[r * cols + c] << 16) * x[b * cols + c];
  y[b * rows + r] = acc;
}

Status check_common(const GemvParams& p, const char* who) {
  if (!p.w || !p.x || !p.y) return InvalidArgument(std::string(who) + ": null pointer");
  if (p.rows < 1 || p.cols < 1)
    return InvalidArgument(std::string(who) + ": rows and cols must be >= 1, got " +
                           std::to_string(p.rows) + " x " + std::to_string(p.cols));
  if (p.batch < 1 || p.batch > kGemvMaxBatch)
    return InvalidArgument(std::string(who) + ": batch " + std::to_string(p.batch) +
                           " outside 1.." + std::to_string(kGemvMaxBatch));
  return Status::Ok();
}

// batch 1..2: one row per warp, 4 steps in flight; batch 3..8: 4 rows per warp, 2 steps.
template <int B>
Status launch(const GemvParams& p, cudaStream_t stream, int sms) {
  constexpr int R = B <= 2 ? 1 : 4;
  constexpr int U = B <= 2 ? 4 : 2;
  const int64_t groups = (p.rows + R - 1) / R;
  const int64_t blocks_needed = (groups + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const int grid = (int)std::min<int64_t>(blocks_needed, (int64_t)sms * 16);
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(gemv_bf16_kernel<B, R, U>, dim3(grid),
                                            dim3(kWarpsPerBlock * 32), 0, stream, p.w, p.x, p.y,
                                            p.rows, p.cols));
  return Status::Ok();
}

}  // namespace

Status gemv_bf16(const GemvParams& p, cudaStream_t stream) {
  FRUGAL_RETURN_IF_ERROR(check_common(p, "gemv_bf16"));
  if (p.cols % 8 != 0)
    return InvalidArgument("gemv_bf16: cols " + std::to_string(p.cols) +
                           " is not a multiple of 8");
  if ((reinterpret_cast<uintptr_t>(p.w) | reinterpret_cast<uintptr_t>(p.x)) % 16 != 0)
    return InvalidArgument("gemv_bf16: w and x must be 16-byte aligned");
  FRUGAL_ASSIGN_OR_RETURN(const int sms, current_num_sms());
  switch (p.batch) {
    case 1: return launch<1>(p, stream, sms);
    case 2: return launch<2>(p, stream, sms);
    case 3: return launch<3>(p, stream, sms);
    case 4: return launch<4>(p, stream, sms);
    case 5: return launch<5>(p, stream, sms);
    case 6: return launch<6>(p, stream, sms);
    case 7: return launch<7>(p, stream, sms);
    default: return launch<8>(p, stream, sms);
  }
}

Status gemv_bf16_reference(const GemvParams& p, cudaStream_t stream) {
  FRUGAL_RETURN_IF_ERROR(check_common(p, "gemv_bf16_reference"));
  const int64_t n = p.rows * p.batch;
  const int threads = 256;
  gemv_bf16_reference_kernel<<<(unsigned)((n + threads - 1) / threads), threads, 0, stream>>>(
      p.w, p.x, p.y, p.rows, p.cols, p.batch);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("gemv_bf16_reference_kernel");
  return Status::Ok();
}

}  // namespace frugal::cuda
