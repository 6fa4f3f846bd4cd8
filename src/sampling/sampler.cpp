#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace frugal {

Status SamplerParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    return InvalidArgument("temperature must be a finite number >= 0");
  if (!(top_p > 0.0f && top_p <= 1.0f)) return InvalidArgument("top-p must be in (0, 1]");
  if (!(min_p >= 0.0f && min_p < 1.0f)) return InvalidArgument("min-p must be in [0, 1)");
  if (!(repeat_penalty > 0.0f) || !std::isfinite(repeat_penalty))
    return InvalidArgument("repeat penalty must be a finite number > 0");
  if (repeat_last_n < 0) return InvalidArgument("repeat-last-n must be >= 0");
  return Status::Ok();
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {}

int32_t Sampler::argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (int32_t i = 1; i < (int32_t)logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

double Sampler::next_uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  return sample_with_uniform(logits, history, p_.temperature > 0.0f ? next_uniform() : 0.0);
}

int32_t Sampler::sample_with_uniform(std::span<float> logits, std::span<const int32_t> history,
                                     double u) {
  // Repetition penalty (CTRL-style, as llama.cpp): divide positive logits, multiply negative.
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0) {
    const size_t start = history.size() > (size_t)p_.repeat_last_n
                             ? history.size() - p_.repeat_last_n : 0;
    std::unordered_set<int32_t> seen(history.begin() + start, history.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= (int32_t)logits.size()) continue;
      float& l = logits[t];
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  if (p_.temperature <= 0.0f) return argmax(logits);

  // Candidates sorted by logit (descending; ties by id for determinism), cut to top-k.
  cand_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) cand_[i] = {(int32_t)i, logits[i]};
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t k = cand_.size();
  if (p_.top_k > 0 && (size_t)p_.top_k < k) {
    k = p_.top_k;
    std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), by_logit);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  cand_.resize(k);

  // Probabilities at temperature 1 for the top-p / min-p cuts (as llama.cpp's chain).
  auto probs = [&](float temp) {
    std::vector<double> p(cand_.size());
    double sum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      p[i] = std::exp(((double)cand_[i].logit - cand_[0].logit) / temp);
      sum += p[i];
    }
    for (double& x : p) x /= sum;
    return p;
  };
  if (p_.top_p < 1.0f) {
    const std::vector<double> p = probs(1.0f);
    double cum = 0;
    size_t keep = p.size();
    for (size_t i = 0; i < p.size(); ++i) {
      cum += p[i];
      if (cum >= p_.top_p) { keep = i + 1; break; }
    }
    cand_.resize(keep);
  }
  if (p_.min_p > 0.0f) {
    const std::vector<double> p = probs(1.0f);
    size_t keep = 1;
    while (keep < p.size() && p[keep] >= p_.min_p * p[0]) ++keep;
    cand_.resize(keep);
  }
  // The draw: inverse CDF over the candidates in order, unnormalized weights.
  std::vector<double> w(cand_.size());
  double z = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    w[i] = std::exp(((double)cand_[i].logit - cand_[0].logit) / p_.temperature);
    z += w[i];
  }
  double target = u * z;
  if (target >= z) target = std::nextafter(z, 0.0);  // u * z rounded up to z: the last one
  double cum = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    cum += w[i];
    if (cum > target) return cand_[i].id;
  }
  return cand_.back().id;
}

}  // namespace frugal
