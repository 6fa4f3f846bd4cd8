// BF16 decode GEMV (batch 1..8). Memory-bound: the weight matrix is the traffic, x stays in L1/L2.
// Layout: W [rows, cols] bf16 row-major; x [batch, cols] f32; y [batch, rows] f32.
// One warp per row (batch <= 2) or per 4 rows (batch 3..8), grid-strided, 8 warps per block;
// each lane reads 16 bytes (8 weights) per row per step with several steps in flight; the batch
// vectors share every weight load. Fused variants (gemv_bf16_fused): RMSNorm of x on the way in
// (with its weights, or unit weights when they were folded into W), residual add, SwiGLU of row
// pairs or RoPE + the paged K/V write on the way out (see ops.cuh). Launch choices (PDL trigger,
// L2 prefetch before the wait) and the kernel (this one or gemv_stream.cu's): GemvTuning.
#include <algorithm>
#include <atomic>
#include <string>

#include "backend/cuda/check.cuh"
#include "backend/cuda/gemv_detail.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"
#include "backend/cuda/ops.cuh"

namespace frugal::cuda {

namespace {

using namespace gemv_detail;

constexpr int kWarpsPerBlock = 8;

std::atomic<bool> g_trigger{GemvTuning{}.trigger_dependents};
std::atomic<int> g_prefetch_bytes{GemvTuning{}.prefetch_bytes_per_row};
std::atomic<int> g_kernel{(int)GemvTuning{}.kernel};
std::atomic<int> g_stream_ctas{GemvTuning{}.stream_ctas_per_sm};
std::atomic<int> g_stream_stages{GemvTuning{}.stream_stages};
std::atomic<int> g_stream_max_batch{GemvTuning{}.stream_max_batch};

// acc[j][b] += dot(8 weights of row j, x[b, elem .. elem + 8)): each x vector is loaded once
// and applied to all R rows. NORM != kNormNone: also ss[b] += x^2; kNormWeighted: x is
// multiplied by the norm weights.
template <int B, int R, int NORM>
__device__ __forceinline__ void fma_rows(const uint4* wv, const float* __restrict__ x,
                                         const float* __restrict__ nw, int64_t cols, int64_t elem,
                                         float (*acc)[B], float* ss) {
  float wf[R][8];
#pragma unroll
  for (int j = 0; j < R; ++j) bf16x8_to_f32(wv[j], wf[j]);
  float4 g0 = make_float4(1.f, 1.f, 1.f, 1.f), g1 = g0;
  if constexpr (NORM == kNormWeighted) {
    g0 = __ldg(reinterpret_cast<const float4*>(nw + elem));
    g1 = __ldg(reinterpret_cast<const float4*>(nw + elem) + 1);
  }
#pragma unroll
  for (int b = 0; b < B; ++b) {
    const float4* xv = reinterpret_cast<const float4*>(x + b * cols + elem);
    float4 x0 = __ldg(xv), x1 = __ldg(xv + 1);
    if constexpr (NORM != kNormNone)
      ss[b] += x0.x * x0.x + x0.y * x0.y + x0.z * x0.z + x0.w * x0.w + x1.x * x1.x +
               x1.y * x1.y + x1.z * x1.z + x1.w * x1.w;
    if constexpr (NORM == kNormWeighted) {
      x0 = make_float4(x0.x * g0.x, x0.y * g0.y, x0.z * g0.z, x0.w * g0.w);
      x1 = make_float4(x1.x * g1.x, x1.y * g1.y, x1.z * g1.z, x1.w * g1.w);
    }
#pragma unroll
    for (int j = 0; j < R; ++j)
      acc[j][b] += wf[j][0] * x0.x + wf[j][1] * x0.y + wf[j][2] * x0.z + wf[j][3] * x0.w +
                   wf[j][4] * x1.x + wf[j][5] * x1.y + wf[j][6] * x1.z + wf[j][7] * x1.w;
  }
}

// One warp per group of R rows (grid-strided). R > 1 for larger batches, where loading x (B
// vectors per weight vector) would otherwise cost more than the weights; U steps of 16-byte
// weight loads per row are issued before any is used. Rows of a group: R consecutive rows, or
// for kSwiglu R/2 consecutive gate rows and the R/2 matching up rows (rows / 2 further on),
// for kRopeKv the first and the second rows of R/2 consecutive rotation pairs.
template <int B, int R, int U, int NORM, int OUT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_bf16_kernel(KernelArgs a) {
  const uint16_t* __restrict__ w = a.w;
  const float* __restrict__ x = a.x;
  const int64_t rows = a.rows, cols = a.cols;
  const int lane = threadIdx.x & 31;
  const int64_t vecs = cols / 8;  // 16-byte vectors per row
  constexpr bool PAIRS = OUT == kSwiglu || OUT == kRopeKv;
  constexpr int RG = PAIRS ? R / 2 : R;  // distinct outputs (rows or row pairs) per group
  const int64_t out_rows = PAIRS ? rows / 2 : rows;
  const int64_t groups = (out_rows + RG - 1) / RG;
  const int64_t warp_stride = (int64_t)gridDim.x * kWarpsPerBlock;
  // Row j of group grp (clamped: rows past the end re-read the last one; never written).
  auto row_of = [&](int64_t grp, int j) -> int64_t {
    if constexpr (OUT == kSwiglu) {
      const int64_t i = min(grp * RG + (j % RG), out_rows - 1);
      return j < RG ? i : i + out_rows;
    } else if constexpr (OUT == kRopeKv) {
      int64_t ra, rb;
      rope_pair_rows(a.rk, min(grp * RG + (j % RG), out_rows - 1), ra, rb);
      return j < RG ? ra : rb;
    } else {
      return min(grp * R + j, rows - 1);
    }
  };
  // Weights do not depend on the previous kernel: start pulling the first prefetch_lines x 128
  // bytes of this warp's first rows into L2 before waiting for it (PDL; see launch.cuh). With
  // the previous GEMV's early trigger this runs during that kernel's tail.
  {
    const int64_t grp0 = (int64_t)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
    if (grp0 < groups) {
      const int64_t all_lines = (cols * 2 + 127) / 128;
      const int lines = all_lines < a.prefetch_lines ? (int)all_lines : a.prefetch_lines;
#pragma unroll
      for (int j = 0; j < R; ++j) {
        const char* row = reinterpret_cast<const char*>(w + row_of(grp0, j) * cols);
        for (int l = lane; l < lines; l += 32) prefetch_l2(row + (int64_t)l * 128);
      }
    }
  }
  wait_prior_grid();
  if (a.trigger) allow_dependent_launch();
  for (int64_t grp = (int64_t)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5); grp < groups;
       grp += warp_stride) {
    const uint4* wr[R];
#pragma unroll
    for (int j = 0; j < R; ++j) wr[j] = reinterpret_cast<const uint4*>(w + row_of(grp, j) * cols);
    float acc[R][B], ss[B];
    RopeLoads rl[OUT == kRopeKv ? RG : 1][B];
    float yold[OUT == kAdd ? RG : 1][B];  // kAdd: the values added to, loaded before the loop
    if constexpr (OUT == kAdd) {
      if (lane == 0) {
#pragma unroll
        for (int j = 0; j < RG; ++j)
#pragma unroll
          for (int b = 0; b < B; ++b)
            yold[j][b] = a.y[b * out_rows + min(grp * RG + j, out_rows - 1)];
      }
    }
    if constexpr (OUT == kRopeKv) {
      if (lane == 0) {
#pragma unroll
        for (int j = 0; j < RG; ++j)
#pragma unroll
          for (int b = 0; b < B; ++b)
            rl[j][b] = rope_loads(a.rk, min(grp * RG + j, out_rows - 1), b);
      }
    }
#pragma unroll
    for (int b = 0; b < B; ++b) {
      ss[b] = 0.0f;
#pragma unroll
      for (int j = 0; j < R; ++j) acc[j][b] = 0.0f;
    }
    int64_t i = lane;
    for (; i + (U - 1) * 32 < vecs; i += U * 32) {
      uint4 wv[U][R];
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int j = 0; j < R; ++j) wv[u][j] = __ldcs(wr[j] + i + u * 32);  // read once
#pragma unroll
      for (int u = 0; u < U; ++u)
        fma_rows<B, R, NORM>(wv[u], x, a.norm_w, cols, (i + u * 32) * 8, acc, ss);
    }
    for (; i < vecs; i += 32) {
      uint4 wv[R];
#pragma unroll
      for (int j = 0; j < R; ++j) wv[j] = __ldcs(wr[j] + i);
      fma_rows<B, R, NORM>(wv, x, a.norm_w, cols, i * 8, acc, ss);
    }
#pragma unroll
    for (int b = 0; b < B; ++b) {
#pragma unroll
      for (int j = 0; j < R; ++j)
#pragma unroll
        for (int off = 16; off > 0; off >>= 1)
          acc[j][b] += __shfl_xor_sync(0xffffffffu, acc[j][b], off);
      if constexpr (NORM != kNormNone) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) ss[b] += __shfl_xor_sync(0xffffffffu, ss[b], off);
        const float inv = 1.0f / sqrtf(ss[b] / (float)cols + a.eps);
#pragma unroll
        for (int j = 0; j < R; ++j) acc[j][b] *= inv;
      }
    }
    if (lane == 0) {
      const int64_t r0 = grp * RG;
#pragma unroll
      for (int j = 0; j < RG; ++j)
        if (r0 + j < out_rows) {
#pragma unroll
          for (int b = 0; b < B; ++b) {
            float* out = a.y + b * out_rows + r0 + j;
            if constexpr (OUT == kRopeKv) {
              rope_kv_store(a.rk, r0 + j, b, rl[j][b], acc[j][b], acc[j + RG][b]);
            } else if constexpr (OUT == kStore) {
              *out = acc[j][b];
            } else if constexpr (OUT == kAdd) {
              *out = yold[j][b] + acc[j][b];
            } else {
              const float g = acc[j][b], u = acc[j + RG][b];
              *out = g / (1.0f + expf(-g)) * u;
            }
          }
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

// batch 1..2: one row (or one pair of rows) per warp, 4 steps in flight; batch 3..8: 4 rows
// per warp, 2 steps. (Measured and dropped at batch 1, dev/cuda/NOTES.md gemv v3: 2 rows per
// warp for the single-row modes, 8 steps in flight.)
template <int B, int NORM, int OUT>
Status launch(const KernelArgs& a, cudaStream_t stream, int sms) {
  constexpr bool PAIRS = OUT == kSwiglu || OUT == kRopeKv;
  constexpr int R = B <= 2 ? (PAIRS ? 2 : 1) : 4;
  constexpr int U = B <= 2 ? 4 : 2;
  constexpr int RG = PAIRS ? R / 2 : R;
  const int64_t out_rows = PAIRS ? a.rows / 2 : a.rows;
  const int64_t groups = (out_rows + RG - 1) / RG;
  const int64_t blocks_needed = (groups + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const int grid = (int)std::min<int64_t>(blocks_needed, (int64_t)sms * 16);
  FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(gemv_bf16_kernel<B, R, U, NORM, OUT>, dim3(grid),
                                            dim3(kWarpsPerBlock * 32), 0, stream, a));
  return Status::Ok();
}

template <int NORM, int OUT>
Status launch_batch(const KernelArgs& a, int batch, cudaStream_t stream, int sms) {
  switch (batch) {
    case 1: return launch<1, NORM, OUT>(a, stream, sms);
    case 2: return launch<2, NORM, OUT>(a, stream, sms);
    case 3: return launch<3, NORM, OUT>(a, stream, sms);
    case 4: return launch<4, NORM, OUT>(a, stream, sms);
    case 5: return launch<5, NORM, OUT>(a, stream, sms);
    case 6: return launch<6, NORM, OUT>(a, stream, sms);
    case 7: return launch<7, NORM, OUT>(a, stream, sms);
    default: return launch<8, NORM, OUT>(a, stream, sms);
  }
}

Status check_fast(const GemvParams& p, const char* who) {
  FRUGAL_RETURN_IF_ERROR(check_common(p, who));
  if (p.cols % 8 != 0)
    return InvalidArgument(std::string(who) + ": cols " + std::to_string(p.cols) +
                           " is not a multiple of 8");
  if ((reinterpret_cast<uintptr_t>(p.w) | reinterpret_cast<uintptr_t>(p.x)) % 16 != 0)
    return InvalidArgument(std::string(who) + ": w and x must be 16-byte aligned");
  return Status::Ok();
}

template <int OUT>
Status launch_input(const KernelArgs& a, GemvInput in, int b, cudaStream_t stream, int sms) {
  switch (in) {
    case GemvInput::kPlain: return launch_batch<kNormNone, OUT>(a, b, stream, sms);
    case GemvInput::kRmsNorm: return launch_batch<kNormWeighted, OUT>(a, b, stream, sms);
    case GemvInput::kRmsNormUnit: return launch_batch<kNormUnit, OUT>(a, b, stream, sms);
  }
  return InvalidArgument("gemv_bf16_fused: unknown input mode");
}

void set_tuning(KernelArgs& a) {
  a.prefetch_lines = (g_prefetch_bytes.load(std::memory_order_relaxed) + 127) / 128;
  a.trigger = g_trigger.load(std::memory_order_relaxed);
  a.stream_stages = g_stream_stages.load(std::memory_order_relaxed);
}

bool streaming(int batch) {
  return g_kernel.load(std::memory_order_relaxed) == (int)GemvKernel::kStream &&
         batch <= g_stream_max_batch.load(std::memory_order_relaxed);
}
int stream_ctas() { return g_stream_ctas.load(std::memory_order_relaxed); }

// w[i] = bf16(float(w[i]) * g[i % cols]), round to nearest even (grid-strided).
__global__ void scale_columns_kernel(uint16_t* __restrict__ w, int64_t n, int64_t cols,
                                     const float* __restrict__ g) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    w[i] = to_bf16_bits(__uint_as_float((uint32_t)w[i] << 16) * g[i % cols]);
}

Status check_rope_kv(const RopeKvWriteParams& r, const GemvParams& p) {
  if (!r.q_out || !r.k_cache || !r.v_cache || !r.positions || !r.block_tables || !r.rope)
    return InvalidArgument("gemv_bf16_fused: rope_kv has a null pointer");
  if (r.n_heads < 1 || r.n_kv_heads < 1 || r.head_dim < 2 || r.head_dim % 2 != 0 ||
      r.block_size < 1 || r.max_blocks_per_seq < 1 || r.n_blocks < 1 || r.rope_positions < 1)
    return InvalidArgument("gemv_bf16_fused: rope_kv has bad sizes");
  if (p.rows != (int64_t)(r.n_heads + 2 * r.n_kv_heads) * r.head_dim)
    return InvalidArgument("gemv_bf16_fused: kRopeKv rows " + std::to_string(p.rows) +
                           " != (n_heads + 2 n_kv_heads) * head_dim");
  return Status::Ok();
}

}  // namespace

Status gemv_bf16(const GemvParams& p, cudaStream_t stream) {
  FRUGAL_RETURN_IF_ERROR(check_fast(p, "gemv_bf16"));
  FRUGAL_ASSIGN_OR_RETURN(const int sms, current_num_sms());
  KernelArgs a{p.w, p.x, p.y, p.rows, p.cols, nullptr, 0.0f, {}, 0, false};
  set_tuning(a);
  if (streaming(p.batch)) return launch_stream(a, kNormNone, kStore, p.batch, stream, sms, stream_ctas());
  return launch_batch<kNormNone, kStore>(a, p.batch, stream, sms);
}

Status gemv_bf16_fused(const GemvFusedParams& f, cudaStream_t stream) {
  const GemvParams& p = f.gemv;
  FRUGAL_RETURN_IF_ERROR(check_fast(p, "gemv_bf16_fused"));
  const bool norm = f.input == GemvInput::kRmsNorm;
  const bool unit = f.input == GemvInput::kRmsNormUnit;
  if (norm && (!f.norm_w || reinterpret_cast<uintptr_t>(f.norm_w) % 16 != 0))
    return InvalidArgument("gemv_bf16_fused: RMSNorm needs 16-byte aligned norm weights");
  if ((norm || unit) && !(f.eps >= 0.0f))
    return InvalidArgument("gemv_bf16_fused: eps must be >= 0");
  if (f.output == GemvOutput::kSwiglu && p.rows % 2 != 0)
    return InvalidArgument("gemv_bf16_fused: SwiGLU output needs an even number of rows, got " +
                           std::to_string(p.rows));
  if (f.output != GemvOutput::kStore && p.y == p.x)
    return InvalidArgument("gemv_bf16_fused: y must not alias x");
  KernelArgs a{p.w, p.x, p.y, p.rows, p.cols, norm ? f.norm_w : nullptr, f.eps, {}, 0, false};
  set_tuning(a);
  if (f.output == GemvOutput::kRopeKv) {
    if (!f.rope_kv) return InvalidArgument("gemv_bf16_fused: kRopeKv needs rope_kv");
    FRUGAL_RETURN_IF_ERROR(check_rope_kv(*f.rope_kv, p));
    a.rk = *f.rope_kv;
  }
  FRUGAL_ASSIGN_OR_RETURN(const int sms, current_num_sms());
  const int b = p.batch;
  if (streaming(b)) {
    const int nm = norm ? kNormWeighted : unit ? kNormUnit : kNormNone;
    const int out = f.output == GemvOutput::kStore  ? kStore
                    : f.output == GemvOutput::kAdd  ? kAdd
                    : f.output == GemvOutput::kSwiglu ? kSwiglu
                                                      : kRopeKv;
    return launch_stream(a, nm, out, b, stream, sms, stream_ctas());
  }
  switch (f.output) {
    case GemvOutput::kStore: return launch_input<kStore>(a, f.input, b, stream, sms);
    case GemvOutput::kAdd: return launch_input<kAdd>(a, f.input, b, stream, sms);
    case GemvOutput::kSwiglu: return launch_input<kSwiglu>(a, f.input, b, stream, sms);
    case GemvOutput::kRopeKv: return launch_input<kRopeKv>(a, f.input, b, stream, sms);
  }
  return InvalidArgument("gemv_bf16_fused: unknown output mode");
}

void set_gemv_tuning(const GemvTuning& t) {
  g_trigger.store(t.trigger_dependents);
  g_prefetch_bytes.store(std::clamp(t.prefetch_bytes_per_row, 0, 1 << 24));
  g_kernel.store((int)t.kernel);
  g_stream_ctas.store(std::clamp(t.stream_ctas_per_sm, 1, 4));
  g_stream_stages.store(std::clamp(t.stream_stages, 0, 12));
  g_stream_max_batch.store(t.stream_max_batch);
}

GemvTuning gemv_tuning() {
  GemvTuning t;
  t.trigger_dependents = g_trigger.load();
  t.prefetch_bytes_per_row = g_prefetch_bytes.load();
  t.kernel = (GemvKernel)g_kernel.load();
  t.stream_ctas_per_sm = g_stream_ctas.load();
  t.stream_stages = g_stream_stages.load();
  t.stream_max_batch = g_stream_max_batch.load();
  return t;
}

Status scale_columns_bf16(uint16_t* w, int64_t rows, int64_t cols, const float* g,
                          cudaStream_t stream) {
  if (!w || !g) return InvalidArgument("scale_columns_bf16: null pointer");
  if (rows < 0 || cols < 1)
    return InvalidArgument("scale_columns_bf16: bad shape " + std::to_string(rows) + " x " +
                           std::to_string(cols));
  if (rows == 0) return Status::Ok();
  const int64_t n = rows * cols;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 1 << 16);
  scale_columns_kernel<<<(unsigned)blocks, threads, 0, stream>>>(w, n, cols, g);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("scale_columns_kernel");
  return Status::Ok();
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
