// Speed of one model on the CPU, as llama-bench measures it:
//   pp: one batched prefill of n_prompt tokens from an empty KV cache (prompt processing);
//   tg: n_gen single-token decode steps from an empty KV cache (text generation).
// Token ids are pseudo-random (speed does not depend on them). Each is run `reps` times after
// one untimed warm-up (first touch of buffers, thread-local scratch); the result is the mean
// and the sample standard deviation of the per-run tokens/s.
//
// The decode roofline: a decode step must read every weight matrix once (the LM head included,
// one embedding row, the norms) and the K/V rows of every earlier position, so
// tokens/s <= bandwidth / decode_bytes_per_token.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/prefill_activations.h"

namespace frugal {

struct SpeedParams {
  int64_t n_prompt = 512;  // pp tokens (0: skip pp)
  int64_t n_gen = 128;     // tg steps (0: skip tg)
  int reps = 3;
  uint64_t seed = 1;       // token ids
  KvCacheOptions kv;       // default: paged, float32
  cpu::ActPrecision decode_act = cpu::ActPrecision::kF32;  // tg matvec activations
  PrefillActivations prefill_act;  // pp GEMM activations
  // Called before each timed or warm-up run: ("pp", rep) with rep = 0 for the warm-up.
  std::function<void(const char* what, int rep)> progress;
  // Optional read-bandwidth probe (GB/s), called just before the first timed tg run and just
  // after every timed tg run, so each run's roofline uses the bandwidth of its own minute (a
  // shared host's bandwidth moves by tens of percent within minutes).
  std::function<Result<double>()> tg_probe;
};

struct Rate {
  double mean = 0;  // tokens/s
  double sd = 0;    // sample standard deviation over the runs (0 for one run)
  std::vector<double> runs;
};

struct SpeedResult {
  Rate pp, tg;
  // With tg_probe: the n + 1 probes around the n timed tg runs (probe i is just before run i,
  // probe i + 1 just after it); empty otherwise.
  std::vector<double> tg_probes_gbs;
};

// Errors: n_prompt / n_gen negative or past the model's context, reps < 1, cache creation.
Result<SpeedResult> measure_speed(const Model& model, ThreadPool& pool, const SpeedParams& p);

// Bytes a decode step reads at context length n_ctx (positions [0, n_ctx) in the cache, the
// new token included): all weight matrices (a tied embedding once, as the LM head), one
// embedding row, the norms, and K and V of n_ctx positions in every layer at kv_bytes_per_elem.
double decode_bytes_per_token(const Model& model, double n_ctx, double kv_bytes_per_elem);

// Mean of decode_bytes_per_token over the tg steps 1..n_gen (context 1..n_gen).
double mean_decode_bytes(const Model& model, int64_t n_gen, double kv_bytes_per_elem);

// Weight elements of the matrices (embedding counted once when tied): bits per weight =
// 8 * model.weight_bytes() / this.
int64_t matrix_params(const ModelConfig& c);

}  // namespace frugal
