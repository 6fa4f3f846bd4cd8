// Token sampling from a logits vector. The order of transforms follows llama.cpp's default
// chain: repetition penalty → top-k → top-p → min-p → temperature → draw. temperature <= 0
// means greedy (argmax; ties go to the lowest id). The same seed gives the same draws.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "base/status.h"

namespace frugal {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;             // <= 0: disabled
  float top_p = 0.95f;        // >= 1: disabled
  float min_p = 0.05f;        // <= 0: disabled; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;  // 1: disabled; > 1 discourages tokens in the recent window
  int repeat_last_n = 64;     // window of recent tokens the penalty looks at
  uint64_t seed = 0;

  Status validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);

  // Picks the next token. `logits` is modified (penalty applied); `history` are the tokens
  // so far (prompt + generated), used by the repetition penalty.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

  // sample() is sample_with_uniform(logits, history, next_uniform()) when temperature > 0 (one
  // uniform per draw; greedy draws none). The draw with a given u in [0, 1): candidates in the
  // order (logit descending, id ascending) after the cuts, weights exp((l - l_max) / T); the
  // first candidate whose cumulative weight exceeds u * (their sum). The device sampler
  // (backend/cuda/sampling.cuh) implements the same rule, so both pick the same token for the
  // same logits and u, and a seed gives the same stream of uniforms to either.
  int32_t sample_with_uniform(std::span<float> logits, std::span<const int32_t> history,
                              double u);
  // The next uniform in [0, 1) from this sampler's seeded generator.
  double next_uniform();

  static int32_t argmax(std::span<const float> logits);

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<Candidate> cand_;
};

}  // namespace frugal
