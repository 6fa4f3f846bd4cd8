#include "eval/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "model/llama.h"

namespace frugal {

namespace {

// log Σ exp(x) in float64, and the argmax (lowest index among ties).
double log_sum_exp(std::span<const float> x, int64_t& argmax) {
  argmax = 0;
  for (int64_t v = 1; v < (int64_t)x.size(); ++v)
    if (x[v] > x[argmax]) argmax = v;
  const double mx = x[argmax];
  double s = 0;
  for (float f : x) s += std::exp((double)f - mx);
  return mx + std::log(s);
}

MeanStderr mean_se(double sum, double sum_sq, int64_t n) {
  MeanStderr m;
  if (n == 0) return m;
  m.mean = sum / (double)n;
  const double var = std::max(0.0, (sum_sq - sum * m.mean) / (double)std::max<int64_t>(1, n - 1));
  m.se = n > 1 ? std::sqrt(var / (double)n) : 0.0;
  return m;
}

}  // namespace

TokenComparison compare_token(std::span<const float> ref, std::span<const float> q, int32_t target) {
  int64_t top_ref = 0, top_q = 0;
  const double lse_r = log_sum_exp(ref, top_ref);
  const double lse_q = log_sum_exp(q, top_q);
  double kl = 0;
  for (size_t v = 0; v < ref.size(); ++v) {
    const double lr = (double)ref[v] - lse_r;
    const double lq = (double)q[v] - lse_q;
    kl += std::exp(lr) * (lr - lq);
  }
  TokenComparison t;
  t.kl = std::max(0.0, kl);  // rounding can leave −1e−17 for identical rows
  t.nll_ref = lse_r - ref[target];
  t.nll_q = lse_q - q[target];
  t.top1_agree = top_ref == top_q;
  t.dp = std::exp((double)ref[top_ref] - lse_r) - std::exp((double)q[top_ref] - lse_q);
  return t;
}

void CompareStats::add(const TokenComparison& t) {
  kl_.push_back(t.kl);
  s_nll_ref += t.nll_ref;
  s2_nll_ref += t.nll_ref * t.nll_ref;
  s_nll_q += t.nll_q;
  s2_nll_q += t.nll_q * t.nll_q;
  s_top1 += t.top1_agree ? 1.0 : 0.0;
  s_dp += t.dp;
  s2_dp += t.dp * t.dp;
}

void CompareStats::add_window(const float* ref, const float* q, std::span<const int32_t> window, int64_t vocab) {
  for (int64_t p = 0; p + 1 < (int64_t)window.size(); ++p)
    add(compare_token({ref + p * vocab, (size_t)vocab}, {q + p * vocab, (size_t)vocab}, window[p + 1]));
}

CompareResult CompareStats::finish() const {
  CompareResult r;
  const int64_t n = count();
  r.n_scored = n;
  if (n == 0) return r;
  double s = 0, s2 = 0;
  for (double v : kl_) { s += v; s2 += v * v; }
  r.kl = mean_se(s, s2, n);
  std::vector<double> sorted = kl_;
  std::sort(sorted.begin(), sorted.end());
  r.kl_median = sorted[(size_t)(n - 1) / 2];
  r.kl_p99 = sorted[(size_t)std::min<int64_t>(n - 1, (int64_t)std::ceil(0.99 * (double)n) - 1)];
  r.kl_max = sorted.back();
  r.nll_ref = mean_se(s_nll_ref, s2_nll_ref, n);
  r.nll_q = mean_se(s_nll_q, s2_nll_q, n);
  r.ppl_ref = std::exp(r.nll_ref.mean);
  r.ppl_q = std::exp(r.nll_q.mean);
  r.top1 = mean_se(s_top1, s_top1, n);  // a 0/1 variable: Σx² = Σx
  r.dp = mean_se(s_dp, s2_dp, n);
  return r;
}

Result<std::vector<std::span<const int32_t>>> eval_windows(std::span<const int32_t> tokens, int64_t ctx,
                                                           int64_t max_chunks) {
  if (ctx < 2) return InvalidArgument("evaluation windows need at least 2 tokens");
  int64_t n = (int64_t)tokens.size() / ctx;
  if (n == 0)
    return InvalidArgument(fmt::format("the text has {} tokens, fewer than one window of {}", tokens.size(), ctx));
  if (max_chunks > 0) n = std::min(n, max_chunks);
  std::vector<std::span<const int32_t>> w;
  for (int64_t i = 0; i < n; ++i) w.push_back(tokens.subspan((size_t)(i * ctx), (size_t)ctx));
  return w;
}

Result<std::vector<float>> window_logits(const Model& m, ThreadPool& pool, std::span<const int32_t> window,
                                         const CompareParams& p) {
  const ModelConfig& c = m.config;
  const int64_t len = (int64_t)window.size();
  if (len > c.max_seq_len)
    return OutOfRange(fmt::format("window of {} tokens exceeds the model's maximum {}", len, c.max_seq_len));
  FRUGAL_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, len, p.kv));
  const int64_t batch = std::max<int64_t>(1, p.batch);
  LlamaRunner runner(m, pool, batch);
  std::vector<float> logits((size_t)(len * c.vocab_size));
  for (int64_t b = 0; b < len; b += batch) {
    const int64_t nb = std::min(batch, len - b);
    FRUGAL_RETURN_IF_ERROR(runner.forward(window.subspan((size_t)b, (size_t)nb), b, kv,
                                          {logits.data() + b * c.vocab_size, (size_t)(nb * c.vocab_size)}, true));
  }
  return logits;
}

Result<ReferenceRun> run_reference(const Model& ref, ThreadPool& pool, std::vector<std::span<const int32_t>> windows,
                                   const CompareParams& p) {
  ReferenceRun r;
  r.vocab = ref.config.vocab_size;
  r.windows = std::move(windows);
  for (std::span<const int32_t> w : r.windows) {
    FRUGAL_ASSIGN_OR_RETURN(std::vector<float> l, window_logits(ref, pool, w, p));
    r.logits.push_back(std::move(l));
  }
  return r;
}

Result<CompareResult> compare_to_reference(const Model& q, const ReferenceRun& ref, ThreadPool& pool,
                                           const CompareParams& p) {
  if (q.config.vocab_size != ref.vocab)
    return InvalidArgument(fmt::format("vocabularies differ: {} vs the reference's {}", q.config.vocab_size, ref.vocab));
  const auto t0 = std::chrono::steady_clock::now();
  CompareStats stats;
  for (size_t i = 0; i < ref.windows.size(); ++i) {
    FRUGAL_ASSIGN_OR_RETURN(std::vector<float> l, window_logits(q, pool, ref.windows[i], p));
    stats.add_window(ref.logits[i].data(), l.data(), ref.windows[i], ref.vocab);
  }
  CompareResult r = stats.finish();
  r.n_chunks = (int64_t)ref.windows.size();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

Result<CompareResult> compare_models(const Model& ref, const Model& q, ThreadPool& pool,
                                     std::span<const int32_t> tokens, const CompareParams& p,
                                     const std::function<void(int64_t, int64_t, double)>& progress) {
  if (q.config.vocab_size != ref.config.vocab_size)
    return InvalidArgument(fmt::format("vocabularies differ: {} vs the reference's {}", q.config.vocab_size,
                                       ref.config.vocab_size));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<std::span<const int32_t>> windows, eval_windows(tokens, p.ctx, p.max_chunks));
  const auto t0 = std::chrono::steady_clock::now();
  CompareStats stats;
  for (size_t i = 0; i < windows.size(); ++i) {
    FRUGAL_ASSIGN_OR_RETURN(std::vector<float> lr, window_logits(ref, pool, windows[i], p));
    FRUGAL_ASSIGN_OR_RETURN(std::vector<float> lq, window_logits(q, pool, windows[i], p));
    stats.add_window(lr.data(), lq.data(), windows[i], ref.config.vocab_size);
    if (progress) progress((int64_t)i + 1, (int64_t)windows.size(), stats.finish().kl.mean);
  }
  CompareResult r = stats.finish();
  r.n_chunks = (int64_t)windows.size();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace frugal
