// Measuring a LlamaCuda (issue 7), shared by `frugal bench --device cuda` (bench_cuda.h) and the
// developer benchmark bench/cuda/model/model_bench.cu, so both time and count the same way:
//   ceilings:  cudaMemcpy device-to-device (bytes read + written, 2 GiB each way; median of 3
//              timed rounds of 5 after a warm-up) and a cuBLAS BF16 GEMM 8192^3 (bf16 in,
//              float out and accumulation: the prefill GEMMs' mode), measured in the same run;
//   decode:    `steps` steps in one device-resident loop (decode_loop: argmax -> next token on
//              the device, a CUDA graph per batch), CUDA events, median of `reps`;
//   prefill:   one synchronous prefill call of T tokens, wall clock, median of `reps`;
//   bytes:     a decode step reads every weight (bf16 matrices + f32 norms), the K/V of its
//              positions (at the mean position of the timed steps), writes one K/V row, and
//              writes and reads the logits; flops: 2 per weight per token + causal attention.
#pragma once

#include <cstdint>
#include <vector>

#include <cuda_runtime.h>

#include "base/status.h"
#include "model/cuda/llama_cuda.cuh"

namespace frugal::cuda {

struct Ceilings {
  double copy_gbs = 0;     // device-to-device copy, bytes read + written per second / 1e9
  double gemm_tflops = 0;  // cuBLAS BF16 GEMM 8192^3
};

// Allocates 4 GiB for the duration of the call.
Result<Ceilings> measure_ceilings(cudaStream_t stream, bool with_gemm = true);

// ms per decode step of slots [0, batch) at context ctx: decode_loop of `steps` steps after a
// warm-up of 2 (which captures the batch's graph), median of `reps`. Needs
// max_seq_len >= ctx + max(steps, 2).
Result<double> time_decode(LlamaCuda& g, int batch, int ctx, int steps, int reps = 3);

// ms of one prefill of tokens[0, n) into slot 0 from position 0 (host call to argmax), after a
// warm-up; median of `reps`.
Result<double> time_prefill(LlamaCuda& g, const int32_t* tokens, int64_t n, int reps = 3);

struct DecodeBytes {
  double weights = 0;  // bf16 matrices + f32 norms (the embedding: one row, not counted)
  double kv = 0;       // K/V read at the mean position of the timed steps + the row written
  double logits = 0;   // written and read back (argmax)
  double total() const { return weights + kv + logits; }
};
// Bytes one decode step of `batch` sequences moves, starting at context ctx, over `steps` steps.
DecodeBytes decode_step_bytes(const LlamaDims& d, int batch, int ctx, int steps);

struct PrefillFlops {
  double total = 0, attention = 0;
};
// 2 flops per weight per token (the LM head once: only the last token's logits) plus causal
// attention, 4 * heads * head_dim * T (T + 1) / 2 per layer.
PrefillFlops prefill_flops(const LlamaDims& d, int64_t tokens);

double median(std::vector<double> v);

}  // namespace frugal::cuda
