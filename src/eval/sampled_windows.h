// Token windows sampled from a model itself, for models that come without a tokenizer or text
// (stories260K): each window starts with `bos` and continues with tokens drawn from the model's
// own next-token distribution at temperature 1 (float64 softmax, inverse CDF on a seeded
// std::mt19937_64). Scoring a quantized copy on such windows measures it where the reference puts
// its probability mass; the reference's perplexity on them is exp(its own average entropy).
// Calibration and evaluation windows must use different seeds.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/model.h"

namespace frugal {

struct SampledWindowsParams {
  int64_t n_windows = 8;
  int64_t len = 256;
  int32_t bos = 1;
  uint64_t seed = 1;
};

// n_windows × len tokens, concatenated (window i at [i·len, (i+1)·len)).
Result<std::vector<int32_t>> sample_token_windows(const Model& m, ThreadPool& pool, const SampledWindowsParams& p);

}  // namespace frugal
