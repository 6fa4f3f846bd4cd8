#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "model/kv_cache.h"
#include "model/llama.h"

namespace frugal {

Result<PerplexityResult> perplexity(const Model& model, ThreadPool& pool,
                                    std::span<const int32_t> tokens,
                                    const PerplexityParams& params,
                                    const std::function<void(int64_t, int64_t, double)>& progress) {
  const ModelConfig& c = model.config;
  if (params.ctx < 2) return InvalidArgument("perplexity context must be at least 2 tokens");
  if (params.ctx > c.max_seq_len)
    return OutOfRange("perplexity context " + std::to_string(params.ctx) +
                      " exceeds the model's maximum " + std::to_string(c.max_seq_len));
  int64_t n_chunks = (int64_t)tokens.size() / params.ctx;
  if (n_chunks == 0)
    return InvalidArgument("the text has " + std::to_string(tokens.size()) +
                           " tokens, fewer than one window of " + std::to_string(params.ctx));
  if (params.max_chunks > 0) n_chunks = std::min(n_chunks, params.max_chunks);

  const auto t0 = std::chrono::steady_clock::now();
  FRUGAL_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, params.ctx, params.kv));
  LlamaRunner runner(model, pool, params.batch);
  const int64_t batch = std::max<int64_t>(1, params.batch);
  std::vector<float> logits(batch * c.vocab_size);
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  for (int64_t ch = 0; ch < n_chunks; ++ch) {
    const int32_t* win = tokens.data() + ch * params.ctx;
    for (int64_t b = 0; b < params.ctx; b += batch) {
      const int64_t nb = std::min(batch, params.ctx - b);
      FRUGAL_RETURN_IF_ERROR(runner.forward({win + b, (size_t)nb}, b, kv, logits, true));
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t p = b + i;  // logits at p predict token p + 1
        if (p + 1 >= params.ctx) break;
        const float* row = &logits[i * c.vocab_size];
        double mx = row[0];
        for (int64_t v = 1; v < c.vocab_size; ++v) mx = std::max(mx, (double)row[v]);
        double se = 0;
        for (int64_t v = 0; v < c.vocab_size; ++v) se += std::exp((double)row[v] - mx);
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

}  // namespace frugal
