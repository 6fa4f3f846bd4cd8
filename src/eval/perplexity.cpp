#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "model/kv_cache.h"
#include "model/llama.h"

namespace frugal {

Result<PerplexityResult> perplexity_from_logits(int64_t vocab, int64_t max_seq_len,
                                                std::span<const int32_t> tokens,
                                                const PerplexityParams& params,
                                                const WindowLogitsFn& logits_fn,
                                                const PerplexityProgress& progress) {
  if (params.ctx < 2) return InvalidArgument("perplexity context must be at least 2 tokens");
  if (params.ctx > max_seq_len)
    return OutOfRange("perplexity context " + std::to_string(params.ctx) +
                      " exceeds the model's maximum " + std::to_string(max_seq_len));
  if (params.max_chunks < 0) return InvalidArgument("--chunks must be >= 0");
  int64_t n_chunks = (int64_t)tokens.size() / params.ctx;
  if (n_chunks == 0)
    return InvalidArgument("the text has " + std::to_string(tokens.size()) +
                           " tokens, fewer than one window of " + std::to_string(params.ctx));
  if (params.max_chunks > 0) n_chunks = std::min(n_chunks, params.max_chunks);

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t batch = std::max<int64_t>(1, params.batch);
  std::vector<float> logits(batch * vocab);
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  for (int64_t ch = 0; ch < n_chunks; ++ch) {
    const std::span<const int32_t> win = tokens.subspan(ch * params.ctx, params.ctx);
    for (int64_t b = 0; b < params.ctx; b += batch) {
      const int64_t nb = std::min(batch, params.ctx - b);
      FRUGAL_RETURN_IF_ERROR(logits_fn(win, b, nb, std::span<float>(logits.data(), nb * vocab)));
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t p = b + i;  // logits at p predict token p + 1
        if (p + 1 >= params.ctx) break;
        const float* row = &logits[i * vocab];
        double mx = row[0];
        for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, (double)row[v]);
        double se = 0;
        for (int64_t v = 0; v < vocab; ++v) se += std::exp((double)row[v] - mx);
        const double nll = mx + std::log(se) - row[win[p + 1]];
        sum += nll;
        sum_sq += nll * nll;
        ++n;
      }
    }
    if (progress) progress(ch + 1, n_chunks, std::exp(sum / n));
  }
  PerplexityResult r;
  r.n_chunks = n_chunks;
  r.n_scored = n;
  r.mean_nll = sum / n;
  r.ppl = std::exp(r.mean_nll);
  const double var = std::max(0.0, sum_sq / n - r.mean_nll * r.mean_nll);
  r.nll_stderr = n > 1 ? std::sqrt(var / (n - 1)) : 0.0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

Result<PerplexityResult> perplexity(const Model& model, ThreadPool& pool,
                                    std::span<const int32_t> tokens,
                                    const PerplexityParams& params,
                                    const PerplexityProgress& progress) {
  const ModelConfig& c = model.config;
  if (params.ctx < 2) return InvalidArgument("perplexity context must be at least 2 tokens");
  if (params.ctx > c.max_seq_len)
    return OutOfRange("perplexity context " + std::to_string(params.ctx) +
                      " exceeds the model's maximum " + std::to_string(c.max_seq_len));
  FRUGAL_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, params.ctx, params.kv));
  LlamaRunner runner(model, pool, params.batch);
  runner.set_prefill_activations(params.prefill_act);
  return perplexity_from_logits(
      c.vocab_size, c.max_seq_len, tokens, params,
      [&](std::span<const int32_t> win, int64_t start, int64_t n, std::span<float> logits) {
        return runner.forward(win.subspan(start, n), start, kv, logits, true);
      },
      progress);
}

}  // namespace frugal
