// CUDA ops for the decode path. Like backend/cpu/ops.h they know nothing about models: device
// pointers in, device pointers out, row-major, "rows" of a weight are its output features.
// Activations are float32; weights BF16 (raw uint16_t bits). Every launcher validates its
// arguments (InvalidArgument) and checks the launch (a CUDA error becomes a Status); none
// synchronizes. Each op has a naive reference kernel or a float64 CPU reference in tests/cuda.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "backend/cuda/model_ops.cuh"
#include "base/status.h"

namespace frugal::cuda {

// y[b, r] = dot(W[r, :], x[b, :]) for b in [0, batch), r in [0, rows).
//   w: bf16 [rows, cols], 16-byte aligned; cols % 8 == 0
//   x: float [batch, cols], 16-byte aligned; y: float [batch, rows]
// batch 1..8: every weight row is read once and applied to all batch vectors; float
// accumulation. Two kernels (GemvKernel below, chosen by GemvTuning): by default the streaming
// kernel at batch 1-2 (weights through shared memory by bulk async copies; H200, 2026-11-30:
// 0.68-1.07 of copy bandwidth on the Llama-3.1-8B shapes, 1.05-1.13x the warp-row kernel
// except the 4096 x 4096 o-proj, 0.95x alone but overlapped with the previous kernel in a
// decode step) and the warp-row kernel at 3-8 (one warp per 4 rows; about half of cuBLAS at
// batch 8, which the model runner uses from batch 3). Under PDL (launch.cuh) W is read before
// griddepcontrol.wait, as constant data: the kernel launched just before must not write it.
struct GemvParams {
  const uint16_t* w = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  const float* x = nullptr;
  int batch = 1;
  float* y = nullptr;
};
inline constexpr int kGemvMaxBatch = 8;
Status gemv_bf16(const GemvParams& p, cudaStream_t stream = nullptr);
// Naive reference: one thread per output, sequential float sum. Same argument rules except
// alignment and cols % 8 (any cols >= 1).
Status gemv_bf16_reference(const GemvParams& p, cudaStream_t stream = nullptr);

// gemv_bf16 with the decode step's neighbours fused in, so a batch-1 layer needs no separate
// RMSNorm, SwiGLU or residual-add kernel (same loads, same warp layout as gemv_bf16):
//   input kRmsNorm: the GEMV's input is rmsnorm(x_b) = x_b / sqrt(mean(x_b^2) + eps) * norm_w
//     (each warp streams all of x_b anyway: the sum of squares is accumulated on the way and
//     the scalar 1/rms applied to the dot products at the end; norm_w [cols] is applied to
//     x on the fly).
//   input kRmsNormUnit: the same with unit norm weights (norm_w ignored): for W' = W diag(g)
//     with the norm weights g folded in at load (scale_columns_bf16), no norm-weight loads.
//   output kAdd:    y[b, r] += dot (the residual add; y must not alias x).
//   output kSwiglu: rows = 2 H (gate rows, then up rows, one fused matrix); one warp computes
//     gate row i and up row i together and writes y[b, i] = silu(gate) * up, y [batch, H].
//   output kRopeKv: W is the fused [q|k|v] projection and batch row b is token b of *rope_kv
//     (its qkv/qkv_stride/n fields are ignored): one warp computes the two rows of a rotation
//     pair and does rope_kv_write's work (q_out, bf16 K/V into the paged cache); y is unused.
enum class GemvInput { kPlain, kRmsNorm, kRmsNormUnit };
enum class GemvOutput { kStore, kAdd, kSwiglu, kRopeKv };
struct GemvFusedParams {
  GemvParams gemv;
  GemvInput input = GemvInput::kPlain;
  const float* norm_w = nullptr;  // kRmsNorm: [cols], 16-byte aligned
  float eps = 1e-5f;
  GemvOutput output = GemvOutput::kStore;
  const RopeKvWriteParams* rope_kv = nullptr;  // kRopeKv (host struct, copied at launch)
};
Status gemv_bf16_fused(const GemvFusedParams& p, cudaStream_t stream = nullptr);

// The kernel behind gemv_bf16 / gemv_bf16_fused (same arguments, same results up to float
// summation order):
//   kWarpRows: a warp per row (group), 16-byte loads from global memory, grid-strided.
//   kStream:   persistent blocks (stream_ctas_per_sm per SM), each owning a contiguous range of
//              output rows; one thread streams the block's weight rows into a ring of shared-
//              memory stages with bulk async copies (cp.async.bulk, completion on an mbarrier),
//              issued before griddepcontrol.wait; 8 warps dot each stage with x held in
//              registers (a thread owns 8 columns of a 2048-column chunk) and reduce per tile
//              of rows through shared memory (dev/cuda/NOTES.md, gemv v4).
enum class GemvKernel { kWarpRows, kStream };

// Launch choices of gemv_bf16 / gemv_bf16_fused (process-wide, read at each launch, so a
// captured graph keeps the choices of its capture). Defaults: the fastest measured on an H200
// (dev/cuda/NOTES.md, gemv v3 and v4): the streaming kernel at batch 1-2 with 2 blocks per SM
// and the early trigger, the warp-row kernel above; benchmarks A/B the others.
struct GemvTuning {
  // griddepcontrol.launch_dependents (warp-row: once past the wait; stream: at block start):
  // a next kernel launched with PDL (launch.cuh) may take SM room left by this grid and start
  // its weight copies / prefetches early. Warp-row: measured neutral (+-0.3 %).
  bool trigger_dependents = true;
  // Bytes of each warp's first rows prefetched into L2 before griddepcontrol.wait (0 measured
  // the same as 2048; 8192 and more 8-10 % slower).
  int prefetch_bytes_per_row = 2048;  // kWarpRows only
  GemvKernel kernel = GemvKernel::kStream;
  int stream_ctas_per_sm = 2;  // kStream: persistent blocks per SM (1..4, clamped to what fits)
  int stream_stages = 0;       // kStream: ring depth, 2..6 (0: 3 at batch 1-2, 5 at 3-8)
  int stream_max_batch = 2;    // kStream only up to this batch (above: warp-row, faster at b8)
};
void set_gemv_tuning(const GemvTuning& t);
GemvTuning gemv_tuning();

// Folds a per-column scale into a bf16 matrix: w[r, c] = bf16(float(w[r, c]) * g[c]) (round to
// nearest even), e.g. RMSNorm weights into the matrix that reads the norm's output.
//   w: bf16 [rows, cols] (rows >= 0, cols >= 1); g: float [cols]
Status scale_columns_bf16(uint16_t* w, int64_t rows, int64_t cols, const float* g,
                          cudaStream_t stream = nullptr);

// Fused residual add + RMSNorm over `rows` vectors of n floats:
//   h = x (+ residual if residual != null); residual_out = h (if non-null; may alias x or
//   residual); y = h / sqrt(mean(h^2) + eps) * w. One block per row; y must not alias w.
struct RmsNormParams {
  const float* x = nullptr;         // [rows, n]
  const float* residual = nullptr;  // [rows, n] or null
  float* residual_out = nullptr;    // [rows, n] or null
  const float* w = nullptr;         // [n]
  float* y = nullptr;               // [rows, n]; may alias x
  int64_t n = 0;
  int64_t rows = 1;
  float eps = 1e-5f;
};
Status rmsnorm(const RmsNormParams& p, cudaStream_t stream = nullptr);

// Rotary position embedding in place, the same function as cpu::rope: pair i of a head has angle
// pos * base^(-2i/head_dim), computed in float64 and rounded to float once (cos/sin too); the
// rotation is float. kAdjacent rotates (x[2i], x[2i+1]) (GGUF layout); kHalf rotates
// (x[i], x[i + head_dim/2]) (Hugging Face rotate_half). An odd head_dim leaves the last
// element unrotated.
enum class RopeStyle { kAdjacent, kHalf };
struct RopeParams {
  float* x = nullptr;                // head h of token t at x + t * token_stride + h * head_dim
  const int32_t* positions = nullptr;  // device [n_tokens]
  int n_tokens = 0;
  int n_heads = 0;
  int head_dim = 0;
  int64_t token_stride = 0;          // floats between tokens; 0 means n_heads * head_dim
  float base = 10000.0f;
  RopeStyle style = RopeStyle::kAdjacent;
};
Status rope(const RopeParams& p, cudaStream_t stream = nullptr);

// out[i] = silu(gate[i]) * up[i] for i in [0, n); out may alias gate or up.
Status swiglu(const float* gate, const float* up, float* out, int64_t n,
              cudaStream_t stream = nullptr);

// out[i] = a[i] + b[i] for i in [0, n); out may alias a or b.
Status add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream = nullptr);

}  // namespace frugal::cuda
