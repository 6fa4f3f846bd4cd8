// The Llama-family forward pass on the CPU backend.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "backend/cpu/ops.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/prefill_activations.h"

namespace frugal {

class LlamaRunner {
 public:
  // max_batch: tokens processed per internal pass (bounds the activation memory of prefill).
  LlamaRunner(const Model& model, ThreadPool& pool, int64_t max_batch = 256);
  LlamaRunner(const LlamaRunner&) = delete;  // owns its activation arena
  LlamaRunner& operator=(const LlamaRunner&) = delete;

  // Runs `tokens` at positions [pos, pos + tokens.size()), appending their K/V to `kv`.
  // A paged cache takes pos == 0 (restart) or pos == its length (append); a budget that cannot
  // hold the tokens is ResourceExhausted.
  // logits receives [n_out, vocab] floats: n_out = tokens.size() when all_logits, else 1 (the
  // last token). Errors: empty input, a token id outside the vocabulary, or positions past the
  // cache's context (OutOfRange).
  Status forward(std::span<const int32_t> tokens, int64_t pos, KvCache& kv,
                 std::span<float> logits, bool all_logits = false);

  const ModelConfig& config() const { return model_.config; }

  // Activations of single-token (decode) matvecs: kF32 (exact float path) or kQ8 (quantized to
  // int8 blocks once per matvec, integer dot products; backend/cpu/ops.h).
  void set_decode_activations(cpu::ActPrecision a) { decode_act_ = a; }
  // Activations of the GEMMs of batches of more than one token (prefill): see
  // PrefillActivations (a plain kF32 / kQ8 converts to it).
  void set_prefill_activations(PrefillActivations a) { prefill_act_ = a; }
  // W8A8: linears whose weights are I8_ROW use int8 per-token activations (cpu::matmul_i8_token)
  // in decode and prefill; other linears keep the path above. Defaults to
  // Model::int8_token_activations.
  void set_int8_token_activations(bool on) { i8_token_act_ = on; }

 private:
  // One pass of n <= max_batch_ tokens; logits for rows [first_out, n) go to `logits`.
  Status forward_batch(const int32_t* tokens, int64_t n, int64_t pos, KvCache& kv, float* logits,
                       int64_t first_out);

  const Model& model_;
  ThreadPool& pool_;
  int64_t max_batch_;
  cpu::ActPrecision decode_act_ = cpu::ActPrecision::kF32;
  PrefillActivations prefill_act_;
  bool i8_token_act_ = false;
  // Run state, allocated once ([max_batch, width] each) in one arena, on huge pages once it is
  // 2 MiB or more: a prefill GEMM writes its output one line per token per row panel, 4 KiB
  // pages apart for wide outputs (with the direct tile packing, i4_g128 pp512 on AVX2 went from
  // 317 to 352 tok/s, bench/RESULTS.md "CPU, session 8").
  // The feed-forward needs one [max_batch, hidden] buffer (cpu::matmul_swiglu fuses gate, up and
  // SwiGLU); the up projection's own is allocated only if W8A8's per-token path runs the two
  // linears apart (w8a8_up_).
  std::shared_ptr<void> arena_;
  float *x_ = nullptr, *xb_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *att_ = nullptr,
        *gate_ = nullptr;
  std::vector<float> w8a8_up_;
};

}  // namespace frugal
