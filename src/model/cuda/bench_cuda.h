// `frugal bench --device cuda` (issue 7): prompt (pp) and decode (tg) speed of the bf16 GPU
// runner, a loaded model or dummy weights of a preset architecture generated on the device,
// against ceilings measured in the same run (bench_measure.h: copy bandwidth, cuBLAS GEMM).
//   pp T:          one prefill of T random tokens (one chunk), tok/s and TFLOP/s of the model's
//                  flops, the ratio to the GEMM rate;
//   tg B x ctx:    B sequences each at position ctx (the KV cache filled with random values
//                  instead of a prefill), n_gen decode steps replayed on the device; tok/s per
//                  sequence and in total, the roofline (bytes per step / copy bandwidth) and
//                  roofline time / measured time.
// Each configuration gets its own runner sized exactly (KV = B x (ctx + n_gen + 8) positions,
// blocks shuffled within each slot as a used pool would hand them out), as model_bench does.
// Before anything runs, the largest configuration is put to the planner's device split at
// gpu_memory_utilization: when it does not fit, the planner's ResourceExhausted (every term in
// bytes) is the result.
// CUDA-free header: the CLI includes it in every build, and links it only with CUDA.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"

namespace frugal::cuda {

struct CudaBenchParams {
  const Model* model = nullptr;  // a loaded model (uploaded as bf16), or
  std::string dummy;             // a planner preset's architecture with random weights
  int dummy_layers = 0;          // > 0: override the preset's layer count
  std::vector<int64_t> prompts;  // pp lengths
  int64_t n_gen = 128;           // decode steps per tg measurement (0: no tg)
  std::vector<int64_t> batches;  // tg batch sizes
  std::vector<int64_t> contexts; // tg starting positions
  int reps = 3;                  // timed repeats (median)
  uint64_t seed = 1;
  double gpu_memory_utilization = 0.9;
  std::function<void(const std::string&)> progress;  // one line per step of the run
};

struct CudaPpRow {
  int64_t tokens = 0;
  double ms = 0, tok_s = 0, tflops = 0, attention_share = 0, over_gemm = 0;
};

struct CudaTgRow {
  int64_t batch = 0, ctx = 0;
  double ms_per_step = 0, tok_s_seq = 0, tok_s_total = 0;
  double weight_bytes = 0, kv_bytes = 0, logits_bytes = 0;
  double roofline_ms = 0, over_roofline = 0;  // roofline_ms / ms_per_step
  size_t arena_bytes = 0;
};

struct CudaBenchResult {
  std::string device;  // "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)"
  std::string model;   // path or "dummy llama-3.1-8b"
  int n_layers = 0;
  int64_t dim = 0, hidden = 0, vocab = 0;
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  double weight_bytes = 0;      // bf16 matrices + f32 norms, read by every decode step
  double upload_seconds = 0;    // -m: host bf16 conversion + upload, summed over runners
  double copy_gbs = 0, gemm_tflops = 0;  // ceilings, this run
  std::string plan;             // the planner's split for the largest configuration
  std::vector<CudaPpRow> pp;
  std::vector<CudaTgRow> tg;
};

Result<CudaBenchResult> bench_cuda(const CudaBenchParams& params);

}  // namespace frugal::cuda
