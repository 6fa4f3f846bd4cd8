// Comparing a model's next-token distributions with a reference model's on the same windows.
//
// Windows and scoring rule as eval/perplexity.h: consecutive non-overlapping windows of `ctx`
// tokens, each run from an empty cache; every position but the last of a window predicts the
// next token (ctx − 1 scored positions per window). Per scored position, from full-vocabulary
// log-softmax in float64:
//   KL(P_ref ‖ P_q) = Σ_v p_ref(v) · (log p_ref(v) − log p_q(v))     (nats; ≥ 0, 0 for equal logits)
//   top-1 agreement = [argmax p_ref == argmax p_q]                    (ties: lowest token id)
//   Δp              = p_ref(t*) − p_q(t*),  t* = argmax p_ref         (> 0: q trusts the reference's pick less)
//   NLL of the actual next token under each model                     (→ both perplexities)
// Means come with their standard error (sample std / √n; positions within a window are not
// independent, so it understates the true uncertainty somewhat).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace frugal {

struct TokenComparison {
  double kl = 0;
  double nll_ref = 0, nll_q = 0;
  double dp = 0;
  bool top1_agree = false;
};

// One position: logits of both models over the same vocabulary, `target` the actual next token.
TokenComparison compare_token(std::span<const float> ref_logits, std::span<const float> q_logits, int32_t target);

struct MeanStderr {
  double mean = 0, se = 0;  // mean and its standard error
};

struct CompareResult {
  int64_t n_chunks = 0, n_scored = 0;
  double ppl_ref = 0, ppl_q = 0;
  MeanStderr nll_ref, nll_q;
  MeanStderr kl;        // nats
  double kl_median = 0, kl_p99 = 0, kl_max = 0;
  MeanStderr top1;      // fraction in [0, 1]
  MeanStderr dp;        // p_ref(t*) − p_q(t*)
  double seconds = 0;
};

// Accumulates TokenComparisons into a CompareResult.
class CompareStats {
 public:
  void add(const TokenComparison& t);
  // Positions 0 .. len−2 of one window: logits [len, vocab] of each model (row p predicts window[p+1]).
  void add_window(const float* ref_logits, const float* q_logits, std::span<const int32_t> window, int64_t vocab);
  int64_t count() const { return (int64_t)kl_.size(); }
  CompareResult finish() const;  // n_chunks and seconds are left to the caller

 private:
  std::vector<double> kl_;
  double s_nll_ref = 0, s2_nll_ref = 0, s_nll_q = 0, s2_nll_q = 0, s_top1 = 0, s_dp = 0, s2_dp = 0;
};

struct CompareParams {
  int64_t ctx = 512;
  int64_t max_chunks = 0;  // 0: all full windows
  int64_t batch = 256;     // tokens per forward pass
  KvCacheOptions kv;       // the cache both models run on
};

// The windows a token stream is cut into (at most max_chunks when > 0). InvalidArgument when
// ctx < 2 or the stream is shorter than one window.
Result<std::vector<std::span<const int32_t>>> eval_windows(std::span<const int32_t> tokens, int64_t ctx,
                                                           int64_t max_chunks);

// Logits of every position of one window [window.size(), vocab], from an empty cache.
Result<std::vector<float>> window_logits(const Model& m, ThreadPool& pool, std::span<const int32_t> window,
                                         const CompareParams& p);

// The reference's logits on a set of windows, computed once and compared against many models.
struct ReferenceRun {
  std::vector<std::span<const int32_t>> windows;
  std::vector<std::vector<float>> logits;  // per window [len, vocab]
  int64_t vocab = 0;
};
Result<ReferenceRun> run_reference(const Model& ref, ThreadPool& pool, std::vector<std::span<const int32_t>> windows,
                                   const CompareParams& p);
Result<CompareResult> compare_to_reference(const Model& q, const ReferenceRun& ref, ThreadPool& pool,
                                           const CompareParams& p);

// Both models over the windows of `tokens`, one window at a time (no logits kept).
// progress(done, total, running mean KL) after each window.
Result<CompareResult> compare_models(const Model& ref, const Model& q, ThreadPool& pool,
                                     std::span<const int32_t> tokens, const CompareParams& p,
                                     const std::function<void(int64_t, int64_t, double)>& progress = nullptr);

}  // namespace frugal
