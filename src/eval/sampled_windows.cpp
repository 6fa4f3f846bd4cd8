#include "eval/sampled_windows.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "model/kv_cache.h"
#include "model/llama.h"

namespace frugal {

Result<std::vector<int32_t>> sample_token_windows(const Model& m, ThreadPool& pool, const SampledWindowsParams& p) {
  const ModelConfig& c = m.config;
  if (p.n_windows <= 0 || p.len < 2) return InvalidArgument("sampled windows need n >= 1 and len >= 2");
  if (p.len > c.max_seq_len)
    return OutOfRange(fmt::format("sampled window of {} tokens exceeds the model's maximum {}", p.len, c.max_seq_len));
  if (p.bos < 0 || p.bos >= c.vocab_size) return OutOfRange(fmt::format("bos token {} out of range", p.bos));
  std::mt19937_64 rng(p.seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::vector<int32_t> out;
  out.reserve((size_t)(p.n_windows * p.len));
  std::vector<float> logits((size_t)c.vocab_size);
  std::vector<double> prob((size_t)c.vocab_size);
  LlamaRunner runner(m, pool, 1);
  for (int64_t w = 0; w < p.n_windows; ++w) {
    FRUGAL_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, p.len, KvCacheOptions{}));
    int32_t tok = p.bos;
    out.push_back(tok);
    for (int64_t pos = 0; pos + 1 < p.len; ++pos) {
      FRUGAL_RETURN_IF_ERROR(runner.forward({&tok, 1}, pos, kv, logits, false));
      const double mx = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      for (int64_t v = 0; v < c.vocab_size; ++v) sum += prob[v] = std::exp((double)logits[v] - mx);
      const double u = uni(rng) * sum;
      double acc = 0;
      int32_t next = (int32_t)c.vocab_size - 1;
      for (int64_t v = 0; v < c.vocab_size; ++v) {
        acc += prob[v];
        if (u < acc) { next = (int32_t)v; break; }
      }
      tok = next;
      out.push_back(tok);
    }
  }
  return out;
}

}  // namespace frugal
