// Decode GEMV (batch 1..8) with the weights streamed through shared memory (GemvKernel::kStream;
// same arguments and fused modes as gemv.cu's warp-row kernel, see ops.cuh).
//
// Why: at batch 1 the warp-row kernel keeps too few bytes in flight per SM (ncu: 34-47 %
// occupancy, 85 % of stalls on the L1TEX scoreboard; bandwidth x latency ~ 26 KB per SM is
// needed), and every kernel ramps up and drains its own stream.
// How: a persistent grid (ctas_per_sm blocks per SM, each owning a contiguous range of output
// rows, or of row pairs for SwiGLU / RoPE). Per block, one producer thread copies the block's
// weight rows, kRows rows x 2048 columns per stage, into a ring of shared-memory stages (3 by default)
// with cp.async.bulk (a copy per row segment, completion counted in bytes on the stage's "full"
// mbarrier; 64-96 KB in flight per block at the default 3 stages, no registers held). The copies need nothing from the
// previous kernel, so they start before griddepcontrol.wait. 8 consumer warps: thread t owns
// columns [8t, 8t + 8) of each 2048-column chunk, holds those x values (and the norm weights'
// product) in registers, and accumulates kRows x B partial dots per chunk from the stage (one
// 16-byte shared load per row); each warp then releases the stage (its "empty" mbarrier). At
// the end of a tile of rows the partial dots (and sum(x^2) for the RMSNorm input) are reduced
// (warp shuffles, then the 8 warps through shared memory) and a thread per (row, batch) runs
// the epilogue (store, residual add, SwiGLU, RoPE + paged K/V write).
#include <algorithm>
#include <atomic>
#include <string>

#include "backend/cuda/bulk_copy.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/gemv_detail.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mbarrier.cuh"

namespace frugal::cuda::gemv_detail {

namespace {

constexpr int kConsumerWarps = 8;
constexpr int kConsumers = kConsumerWarps * 32;
constexpr int kThreads = kConsumers + 32;   // + one producer warp
constexpr int kChunkCols = kConsumers * 8;  // columns per stage row: 8 (16 bytes) per thread
constexpr int kSlotBytes = kChunkCols * 2;  // one row segment of a stage

// Rows per stage, stages (default and most; the ring depth is a launch choice), and the blocks
// per SM the register budget is sized for.
template <int B>
struct Shape {
  static constexpr int kRows = B <= 2 ? 8 : 4;
  static constexpr int kDefaultStages = B <= 2 ? 3 : 5;
  static constexpr int kMaxStages = B <= 2 ? 6 : 12;
  static constexpr int kMinBlocks = B <= 2 ? 2 : 1;
};

// Values reduced per tile: kRows x B dots, plus B sums of squares for an RMSNorm input.
template <int B, int NORM>
constexpr int n_values() {
  return Shape<B>::kRows * B + (NORM != kNormNone ? B : 0);
}

template <int B, int NORM>
constexpr size_t smem_bytes(int stages) {
  return (size_t)stages * Shape<B>::kRows * kSlotBytes  // the ring
         + 2 * (size_t)stages * sizeof(uint64_t)         // full, empty barriers
         + (size_t)(kConsumerWarps + 1) * n_values<B, NORM>() * sizeof(float);  // red, fin
}

// Weight row `second` (0 or 1) of output unit u: the row, gate / up rows, rotation-pair rows.
template <int OUT>
__device__ __forceinline__ int64_t unit_row(const KernelArgs& a, int64_t units, int64_t u,
                                            int second) {
  if constexpr (OUT == kSwiglu) {
    return second ? u + units : u;
  } else if constexpr (OUT == kRopeKv) {
    int64_t ra, rb;
    rope_pair_rows(a.rk, u, ra, rb);
    return second ? rb : ra;
  } else {
    return u;
  }
}

__device__ __forceinline__ void consumers_sync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kConsumers) : "memory");
}

template <int B, int NORM, int OUT>
__global__ void __launch_bounds__(kThreads, Shape<B>::kMinBlocks)
    gemv_stream_kernel(const KernelArgs a) {
  constexpr int RT = Shape<B>::kRows;
  const int S = a.stream_stages;
  constexpr bool PAIRS = OUT == kSwiglu || OUT == kRopeKv;
  constexpr int NR = PAIRS ? 2 : 1;  // weight rows per output unit
  constexpr int TU = RT / NR;        // output units per tile (stage slot j: unit j % TU)
  constexpr int NV = n_values<B, NORM>();
  extern __shared__ __align__(128) unsigned char smem[];
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + (size_t)S * RT * kSlotBytes);
  uint64_t* empty = full + S;
  float* red = reinterpret_cast<float*>(empty + S);  // [kConsumerWarps][NV]
  float* fin = red + kConsumerWarps * NV;            // [NV]

  const int64_t cols = a.cols;
  const int64_t units = PAIRS ? a.rows / 2 : a.rows;
  const int64_t u0 = units * blockIdx.x / gridDim.x;
  const int64_t u1 = units * (blockIdx.x + 1) / gridDim.x;
  const int n_tiles = (int)((u1 - u0 + TU - 1) / TU);
  const int nk = (int)((cols + kChunkCols - 1) / kChunkCols);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      mbar::init(bulk::smem_u32(full + s), 1);
      mbar::init(bulk::smem_u32(empty + s), kConsumerWarps);
    }
    mbar::fence_init();
  }
  __syncthreads();
  // The early PDL trigger counts per block from its first thread's call: here, at the start.
  // The next kernel may then take what is left of the SM (its weight copies overlap this one;
  // its reads of this one's outputs still wait for this whole grid).
  if (a.trigger) allow_dependent_launch();

  if (warp == kConsumerWarps) {  // the producer: weights only, so no wait for the previous grid
    if (lane == 0) {
      const uint64_t policy = bulk::evict_first_policy();
      int s = 0;
      uint32_t phase = 0;  // parity of the current pass over the ring
      bool first_pass = true;
      for (int tile = 0; tile < n_tiles; ++tile) {
        const int64_t ub = u0 + (int64_t)tile * TU;
        const int valid = (int)min((int64_t)TU, u1 - ub);
        for (int kc = 0; kc < nk; ++kc) {
          if (!first_pass) mbar::wait(bulk::smem_u32(empty + s), phase ^ 1u);  // released last pass
          const int64_t k0 = (int64_t)kc * kChunkCols;
          const uint32_t seg = (uint32_t)(min((int64_t)kChunkCols, cols - k0) * 2);
          mbar::arrive_expect_tx(bulk::smem_u32(full + s), seg * (uint32_t)(valid * NR));
          unsigned char* dst = smem + (size_t)s * RT * kSlotBytes;
#pragma unroll
          for (int j = 0; j < RT; ++j)
            if (j % TU < valid) {
              const int64_t row = unit_row<OUT>(a, units, ub + j % TU, j / TU);
              bulk::copy_g2s(dst + j * kSlotBytes, a.w + row * cols + k0, seg, full + s, policy);
            }
          if (++s == S) {
            s = 0;
            phase ^= 1u;
            first_pass = false;
          }
        }
      }
    }
    return;
  }

  // Consumers: x, y, the residual and the K/V cache may be the previous kernel's work.
  wait_prior_grid();
  const int t = threadIdx.x;
  const float* __restrict__ x = a.x;
  const int eu = t / B, eb = t % B;  // epilogue thread for (unit eu of the tile, batch row eb)
  int s = 0;
  uint32_t phase = 0;
  for (int tile = 0; tile < n_tiles; ++tile) {
    const int64_t ub = u0 + (int64_t)tile * TU;
    const int valid = (int)min((int64_t)TU, u1 - ub);
    const bool epi = t < TU * B && eu < valid;
    float yold = 0.0f;
    RopeLoads rl{};
    if (epi) {  // epilogue inputs, loaded now so their latency hides behind the tile
      if constexpr (OUT == kAdd) yold = a.y[eb * units + ub + eu];
      if constexpr (OUT == kRopeKv) rl = rope_loads(a.rk, ub + eu, eb);
    }
    float acc[RT][B], ss[B];
#pragma unroll
    for (int b = 0; b < B; ++b) {
      ss[b] = 0.0f;
#pragma unroll
      for (int j = 0; j < RT; ++j) acc[j][b] = 0.0f;
    }
    for (int kc = 0; kc < nk; ++kc) {
      const int64_t col = (int64_t)kc * kChunkCols + t * 8;
      const bool active = col < cols;  // cols % 8 == 0: all 8 columns or none
      float xf[B][8];
      if (active) {
        float4 g0 = make_float4(1.f, 1.f, 1.f, 1.f), g1 = g0;
        if constexpr (NORM == kNormWeighted) {
          g0 = __ldg(reinterpret_cast<const float4*>(a.norm_w + col));
          g1 = __ldg(reinterpret_cast<const float4*>(a.norm_w + col) + 1);
        }
#pragma unroll
        for (int b = 0; b < B; ++b) {
          const float4* xv = reinterpret_cast<const float4*>(x + b * cols + col);
          const float4 x0 = __ldg(xv), x1 = __ldg(xv + 1);
          if constexpr (NORM != kNormNone)
            ss[b] += x0.x * x0.x + x0.y * x0.y + x0.z * x0.z + x0.w * x0.w + x1.x * x1.x +
                     x1.y * x1.y + x1.z * x1.z + x1.w * x1.w;
          xf[b][0] = x0.x * g0.x;
          xf[b][1] = x0.y * g0.y;
          xf[b][2] = x0.z * g0.z;
          xf[b][3] = x0.w * g0.w;
          xf[b][4] = x1.x * g1.x;
          xf[b][5] = x1.y * g1.y;
          xf[b][6] = x1.z * g1.z;
          xf[b][7] = x1.w * g1.w;
        }
      }
      mbar::wait(bulk::smem_u32(full + s), phase);
      if (active) {
        const unsigned char* st = smem + (size_t)s * RT * kSlotBytes + t * 16;
#pragma unroll
        for (int j = 0; j < RT; ++j)
          if (j % TU < valid) {
            float wf[8];
            bf16x8_to_f32(*reinterpret_cast<const uint4*>(st + j * kSlotBytes), wf);
#pragma unroll
            for (int b = 0; b < B; ++b)
              acc[j][b] += wf[0] * xf[b][0] + wf[1] * xf[b][1] + wf[2] * xf[b][2] +
                           wf[3] * xf[b][3] + wf[4] * xf[b][4] + wf[5] * xf[b][5] +
                           wf[6] * xf[b][6] + wf[7] * xf[b][7];
          }
      }
      __syncwarp();
      if (lane == 0) mbar::arrive(bulk::smem_u32(empty + s));  // this warp is done with the stage
      if (++s == S) {
        s = 0;
        phase ^= 1u;
      }
    }
    // Reduce the tile: warp shuffles, then the 8 warps' partials through shared memory. One
    // buffer is enough: a warp writes red again only after the second barrier of this tile,
    // which every thread reaches after its reads of red / fin below.
#pragma unroll
    for (int j = 0; j < RT; ++j)
#pragma unroll
      for (int b = 0; b < B; ++b) {
        float v = acc[j][b];
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0) red[warp * NV + j * B + b] = v;
      }
    if constexpr (NORM != kNormNone) {
#pragma unroll
      for (int b = 0; b < B; ++b) {
        float v = ss[b];
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0) red[warp * NV + RT * B + b] = v;
      }
    }
    consumers_sync();
    if (t < NV) {
      float v = 0.0f;
#pragma unroll
      for (int w = 0; w < kConsumerWarps; ++w) v += red[w * NV + t];
      fin[t] = v;
    }
    consumers_sync();
    if (epi) {
      float inv = 1.0f;
      if constexpr (NORM != kNormNone)
        inv = 1.0f / sqrtf(fin[RT * B + eb] / (float)cols + a.eps);
      const float v0 = fin[eu * B + eb] * inv;
      const int64_t gu = ub + eu;
      float* out = a.y + eb * units + gu;
      if constexpr (OUT == kStore) {
        *out = v0;
      } else if constexpr (OUT == kAdd) {
        *out = yold + v0;
      } else {
        const float v1 = fin[(TU + eu) * B + eb] * inv;
        if constexpr (OUT == kSwiglu)
          *out = v0 / (1.0f + expf(-v0)) * v1;
        else
          rope_kv_store(a.rk, gu, eb, rl, v0, v1);
      }
    }
  }
}

template <int B, int NORM, int OUT>
Status launch_one(const KernelArgs& args, cudaStream_t stream, int sms, int ctas_per_sm) {
  using Sh = Shape<B>;
  KernelArgs a = args;
  a.stream_stages = a.stream_stages <= 0 ? Sh::kDefaultStages
                                         : std::clamp(a.stream_stages, 2, Sh::kMaxStages);
  const size_t smem = smem_bytes<B, NORM>(a.stream_stages);
  constexpr bool PAIRS = OUT == kSwiglu || OUT == kRopeKv;
  constexpr int TU = Sh::kRows / (PAIRS ? 2 : 1);
  auto* kernel = gemv_stream_kernel<B, NORM, OUT>;
  // Once per instantiation (and device): allow the deepest ring's shared memory; per ring
  // depth, how many blocks fit on an SM.
  static const cudaError_t attr_err = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_bytes<B, NORM>(Sh::kMaxStages));
  FRUGAL_CUDA_RETURN_IF_ERROR(attr_err);
  static std::atomic<int> fit_cache[Sh::kMaxStages + 1] = {};
  int fit = fit_cache[a.stream_stages].load(std::memory_order_relaxed);
  if (fit == 0) {
    FRUGAL_CUDA_RETURN_IF_ERROR(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, kThreads, smem));
    if (fit < 1)
      return Internal("gemv_stream: a block with " + std::to_string(a.stream_stages) +
                      " stages does not fit on an SM");
    fit_cache[a.stream_stages].store(fit, std::memory_order_relaxed);
  }
  const int64_t units = PAIRS ? a.rows / 2 : a.rows;
  const int64_t tiles = (units + TU - 1) / TU;
  const int grid = (int)std::max<int64_t>(
      1, std::min<int64_t>(tiles, (int64_t)sms * std::min(ctas_per_sm, fit)));
  FRUGAL_CUDA_RETURN_IF_ERROR(
      launch_kernel(kernel, dim3(grid), dim3(kThreads), smem, stream, a));
  return Status::Ok();
}

template <int B, int NORM>
Status launch_out(const KernelArgs& a, int out, cudaStream_t stream, int sms, int ctas) {
  switch (out) {
    case kStore: return launch_one<B, NORM, kStore>(a, stream, sms, ctas);
    case kAdd: return launch_one<B, NORM, kAdd>(a, stream, sms, ctas);
    case kSwiglu: return launch_one<B, NORM, kSwiglu>(a, stream, sms, ctas);
    case kRopeKv: return launch_one<B, NORM, kRopeKv>(a, stream, sms, ctas);
  }
  return InvalidArgument("gemv_stream: unknown output mode " + std::to_string(out));
}

template <int B>
Status launch_norm(const KernelArgs& a, int norm, int out, cudaStream_t stream, int sms,
                   int ctas) {
  switch (norm) {
    case kNormNone: return launch_out<B, kNormNone>(a, out, stream, sms, ctas);
    case kNormWeighted: return launch_out<B, kNormWeighted>(a, out, stream, sms, ctas);
    case kNormUnit: return launch_out<B, kNormUnit>(a, out, stream, sms, ctas);
  }
  return InvalidArgument("gemv_stream: unknown input mode " + std::to_string(norm));
}

}  // namespace

Status launch_stream(const KernelArgs& a, int norm, int out, int batch, cudaStream_t stream,
                     int sms, int ctas_per_sm) {
  switch (batch) {
    case 1: return launch_norm<1>(a, norm, out, stream, sms, ctas_per_sm);
    case 2: return launch_norm<2>(a, norm, out, stream, sms, ctas_per_sm);
    case 3: return launch_norm<3>(a, norm, out, stream, sms, ctas_per_sm);
    case 4: return launch_norm<4>(a, norm, out, stream, sms, ctas_per_sm);
    case 5: return launch_norm<5>(a, norm, out, stream, sms, ctas_per_sm);
    case 6: return launch_norm<6>(a, norm, out, stream, sms, ctas_per_sm);
    case 7: return launch_norm<7>(a, norm, out, stream, sms, ctas_per_sm);
    case 8: return launch_norm<8>(a, norm, out, stream, sms, ctas_per_sm);
  }
  return InvalidArgument("gemv_stream: batch " + std::to_string(batch) + " outside 1..8");
}

}  // namespace frugal::cuda::gemv_detail
