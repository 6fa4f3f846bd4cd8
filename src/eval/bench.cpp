#include "eval/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

#include "model/llama.h"

namespace frugal {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Rate summarize(std::vector<double> runs) {
  Rate r;
  r.runs = std::move(runs);
  if (r.runs.empty()) return r;
  for (double x : r.runs) r.mean += x;
  r.mean /= (double)r.runs.size();
  if (r.runs.size() > 1) {
    double ss = 0;
    for (double x : r.runs) ss += (x - r.mean) * (x - r.mean);
    r.sd = std::sqrt(ss / (double)(r.runs.size() - 1));
  }
  return r;
}

// One pp run: a single forward pass over the prompt from an empty cache. Returns seconds.
Result<double> run_pp(const Model& m, ThreadPool& pool, const std::vector<int32_t>& prompt,
                      const KvCacheOptions& kvo, PrefillActivations act) {
  const ModelConfig& c = m.config;
  FRUGAL_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, (int64_t)prompt.size(), kvo));
  LlamaRunner runner(m, pool, (int64_t)prompt.size());  // one batch: the whole prompt
  runner.set_prefill_activations(act);
  std::vector<float> logits((size_t)c.vocab_size);
  const auto t0 = std::chrono::steady_clock::now();
  FRUGAL_RETURN_IF_ERROR(runner.forward(prompt, 0, kv, logits));
  return seconds_since(t0);
}

// One tg run: n single-token steps from an empty cache, each feeding the previous id.
Result<double> run_tg(const Model& m, ThreadPool& pool, const std::vector<int32_t>& ids,
                      const KvCacheOptions& kvo, cpu::ActPrecision act) {
  const ModelConfig& c = m.config;
  FRUGAL_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, (int64_t)ids.size(), kvo));
  LlamaRunner runner(m, pool, 1);
  runner.set_decode_activations(act);
  std::vector<float> logits((size_t)c.vocab_size);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < ids.size(); ++i)
    FRUGAL_RETURN_IF_ERROR(runner.forward({&ids[i], 1}, (int64_t)i, kv, logits));
  return seconds_since(t0);
}

}  // namespace

Result<SpeedResult> measure_speed(const Model& model, ThreadPool& pool, const SpeedParams& p) {
  const ModelConfig& c = model.config;
  if (p.n_prompt < 0 || p.n_gen < 0) return InvalidArgument("bench: negative token count");
  if (p.reps < 1) return InvalidArgument("bench: --reps must be at least 1");
  if (p.n_prompt > c.max_seq_len || p.n_gen > c.max_seq_len)
    return OutOfRange("bench: " + std::to_string(std::max(p.n_prompt, p.n_gen)) +
                      " tokens exceed the model's context of " + std::to_string(c.max_seq_len));
  std::mt19937_64 rng(p.seed);
  std::uniform_int_distribution<int32_t> tok(0, (int32_t)c.vocab_size - 1);
  std::vector<int32_t> prompt((size_t)p.n_prompt), gen((size_t)p.n_gen);
  for (int32_t& t : prompt) t = tok(rng);
  for (int32_t& t : gen) t = tok(rng);

  SpeedResult r;
  // probe (may be empty): called before the first timed run and after every timed run.
  auto repeat = [&](const char* what, auto&& once, int64_t n_tokens, Rate* out,
                    const std::function<Result<double>()>& probe,
                    std::vector<double>* probes) -> Status {
    if (n_tokens == 0) return Status::Ok();
    std::vector<double> rates;
    for (int rep = 0; rep <= p.reps; ++rep) {  // rep 0: warm-up, not counted
      if (p.progress) p.progress(what, rep);
      FRUGAL_ASSIGN_OR_RETURN(double s, once());
      if (rep > 0) rates.push_back(s > 0 ? (double)n_tokens / s : 0.0);
      if (probe) {
        FRUGAL_ASSIGN_OR_RETURN(double gbs, probe());
        probes->push_back(gbs);
      }
    }
    *out = summarize(std::move(rates));
    return Status::Ok();
  };
  FRUGAL_RETURN_IF_ERROR(repeat(
      "pp", [&] { return run_pp(model, pool, prompt, p.kv, p.prefill_act); }, p.n_prompt, &r.pp,
      nullptr, nullptr));
  FRUGAL_RETURN_IF_ERROR(repeat(
      "tg", [&] { return run_tg(model, pool, gen, p.kv, p.decode_act); }, p.n_gen, &r.tg,
      p.tg_probe, &r.tg_probes_gbs));
  return r;
}

int64_t matrix_params(const ModelConfig& c) {
  const int64_t q_dim = c.n_heads * c.head_dim();
  const int64_t per_layer =
      2 * q_dim * c.dim + 2 * c.kv_dim() * c.dim + 3 * c.hidden_dim * c.dim;
  return c.vocab_size * c.dim * (c.tied_embeddings ? 1 : 2) + (int64_t)c.n_layers * per_layer;
}

double decode_bytes_per_token(const Model& model, double n_ctx, double kv_bytes_per_elem) {
  const ModelConfig& c = model.config;
  const ModelWeights& w = model.weights;
  // Every matrix once; the embedding table contributes one row unless it is also the LM head.
  double bytes = 0;
  std::set<const void*> seen;
  auto add = [&](const TensorView& t) {
    if (t.data && seen.insert(t.data).second) bytes += (double)t.nbytes;
  };
  for (const LayerWeights& l : w.layers)
    for (const TensorView* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm,
                                &l.w_gate, &l.w_up, &l.w_down})
      add(*t);
  add(w.output_norm);
  add(w.output);
  if (w.token_embd.data != w.output.data) bytes += (double)w.token_embd.row_bytes();
  bytes += n_ctx * 2.0 * (double)c.n_layers * (double)c.kv_dim() * kv_bytes_per_elem;
  return bytes;
}

double mean_decode_bytes(const Model& model, int64_t n_gen, double kv_bytes_per_elem) {
  if (n_gen <= 0) return decode_bytes_per_token(model, 1, kv_bytes_per_elem);
  // Linear in n_ctx: the mean over contexts 1..n_gen is the value at (n_gen + 1) / 2.
  return decode_bytes_per_token(model, (double)(n_gen + 1) / 2.0, kv_bytes_per_elem);
}

}  // namespace frugal
