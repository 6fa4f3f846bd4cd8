// Token sampling on the device (issue 7): temperature, top-k, top-p (nucleus) and min-p over
// rows of logits, with the CPU Sampler's semantics (sampling/sampler.h) so that the same logits
// and the same uniform random number give the same token:
//   candidates in the order (logit descending, id ascending); top-k keeps the first k; top-p
//   the shortest prefix whose probability (temperature 1) reaches top_p; min-p those with
//   p >= min_p * p_max; then the draw at temperature T: the first candidate whose cumulative
//   weight exp((l - l_max) / T) exceeds u * (their sum). temperature <= 0: argmax (lowest id on
//   ties). NaN logits are never candidates. The repetition penalty is a separate kernel
//   (apply_repetition_penalty), run on the logits first.
// No sort: every cut is a search for a threshold over the 64-bit key (ordered logit bits,
// ~id) — the largest key whose count or probability mass of candidates at or above it meets
// the target — done 4 bits per pass over the row (16 passes), sums in float64 as the CPU does.
// One block per row; the uniforms come from the host's RNG (the CPU Sampler's stream), only
// the ids leave the device. Test: tests/cuda/cuda_sampling_test.cpp (against the CPU Sampler).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "base/status.h"

namespace frugal::cuda {

struct SampleParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // <= 0: off
  float top_p = 1.0f;        // >= 1: off; must be > 0
  float min_p = 0.0f;        // <= 0: off; must be < 1
  Status validate() const;
};

// out[r] = the token drawn from logits[r, 0:n) with uniforms[r] (device arrays), r < rows.
Status sample_rows(const float* logits, int64_t rows, int64_t n, const SampleParams& p,
                   const double* uniforms, int32_t* out, cudaStream_t stream = nullptr);

// The CPU Sampler's repetition penalty (CTRL-style, as llama.cpp) on one row logits[0, n)
// (device): for each of the n_ids ids (device array; the caller passes each token once, ids
// outside [0, n) are skipped) l = l > 0 ? l / penalty : l * penalty, as src/sampling/sampler.cpp.
Status apply_repetition_penalty(float* logits, int64_t n, const int32_t* ids, int n_ids,
                                float penalty, cudaStream_t stream = nullptr);

}  // namespace frugal::cuda
