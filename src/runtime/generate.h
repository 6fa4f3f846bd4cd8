// Single-sequence generation: prefill the prompt, then decode token by token with a sampler.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "backend/cpu/ops.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/prefill_activations.h"
#include "sampling/sampler.h"

namespace frugal {

// A KV pool shared across requests (prefix caching, admission waiting): see model/kv_cache.h.
struct SharedKv {
  std::shared_ptr<KvPool> pool;
  uint64_t salt = 0;                     // tenant key: prefixes are shared within a salt only
  Admission admission = Admission::kWait;
  int64_t wait_ms = 0;                   // kWait: give up after this long (0: no limit)
};

struct GenerateParams {
  int64_t max_new_tokens = 128;
  int64_t n_ctx = 0;          // KV cache size; 0: prompt + max_new_tokens, capped at the model's
  bool ignore_eos = false;    // keep going past end-of-generation tokens
  int64_t prefill_batch = 256;
  KvCacheOptions kv;          // cache kind (paged default), KV dtype, block size, budget
  SamplerParams sampler;
  // Decode matvec activations (model/llama.h): kQ8 quantizes them to int8 blocks for integer
  // dot products on integer weight formats.
  cpu::ActPrecision decode_act = cpu::ActPrecision::kF32;
  // Prompt (prefill GEMM) activations, likewise (model/llama.h).
  PrefillActivations prefill_act;
  // When set, the request runs in this shared pool instead of a cache of its own (kv and n_ctx
  // are then ignored, the pool's limits apply): the cached prefix of the prompt is not
  // recomputed, and a full pool makes the request wait or refuses it (Unavailable).
  std::optional<SharedKv> shared_kv;
};

// kKvFull: a shared pool ran out of blocks mid-generation (the tokens so far are kept).
enum class StopReason { kLength, kEndOfGeneration, kContextFull, kCallback, kKvFull };
const char* stop_reason_name(StopReason r);

struct GenerateStats {
  int64_t n_prompt = 0;
  int64_t n_prompt_cached = 0;  // prompt tokens whose K/V came from the prefix cache
  int64_t n_generated = 0;
  double prompt_seconds = 0;  // prefill wall time
  double decode_seconds = 0;  // wall time of the decode loop (forward + sampling)
  int64_t n_decode_steps = 0; // single-token forward passes in that time
  StopReason stop = StopReason::kLength;
  size_t kv_bytes = 0;
};

// What happens to each sampled token, shared by the CPU loop below and the GPU one
// (model/cuda/generate_cuda): an end-of-generation token (unless ignore_eos) stops without being
// emitted; otherwise it is counted and passed to on_token (false stops), and generation ends at
// max_new_tokens (stop stays kLength) or when position `pos` has reached n_ctx.
struct TokenStopRule {
  const Model* model = nullptr;
  bool ignore_eos = false;
  int64_t max_new_tokens = 0;
  int64_t n_ctx = 0;
  // true: generation ends here (st.stop says why).
  bool emit(int32_t tok, int64_t pos, const std::function<bool(int32_t)>& on_token,
            GenerateStats& st) const;
};

// Calls on_token(id) for each generated token as soon as it is sampled; returning false stops.
// Errors: empty prompt (InvalidArgument), prompt longer than the context (OutOfRange), invalid
// sampler settings, token ids outside the vocabulary; with a shared pool, a prompt that can
// never fit (ResourceExhausted) or a full pool without waiting (Unavailable).
Result<GenerateStats> generate(const Model& model, ThreadPool& pool,
                               std::span<const int32_t> prompt, const GenerateParams& params,
                               const std::function<bool(int32_t)>& on_token);

}  // namespace frugal
