// What `frugal chat` needs from a device: answer the whole conversation so far, reusing what
// earlier turns computed. The CPU engine over a shared paged KV pool with prefix caching
// (chat_cpu.cpp), or one GPU sequence whose K/V stay on the device between turns
// (chat_cuda.cpp). The turn loop, the chat template and the statistics are cmd_chat.cpp's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "base/status.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/prefill_activations.h"
#include "runtime/generate.h"
#include "sampling/sampler.h"

namespace frugal::cli {

class ChatBackend {
 public:
  virtual ~ChatBackend() = default;
  // The longest conversation in tokens: a longer one is refused before answer() is called.
  virtual int64_t n_ctx() const = 0;
  // Generates the next answer after `conversation` (every turn so far, templated), streaming
  // each token to on_token. stats.n_prompt_cached: conversation tokens not recomputed.
  virtual Result<GenerateStats> answer(std::span<const int32_t> conversation,
                                       const std::function<bool(int32_t)>& on_token) = 0;
  // One line for the banner: where the model runs and how its KV cache is held.
  virtual std::string describe() const = 0;
  // Where n_prompt_cached came from ("the prefix cache"), for the per-turn statistics.
  virtual const char* reuse_source() const = 0;
  // Appended to the per-turn statistics ("; cache hit rate 0.53"), may be empty.
  virtual std::string turn_note() const = 0;
};

struct ChatBackendParams {
  int64_t n_predict = 256;   // max tokens per answer
  int64_t n_ctx = 4096;      // longest conversation (capped at the model's context)
  SamplerParams sampler;
  bool reuse = true;         // false: every turn recomputes the whole conversation
  // CPU only.
  int threads = 0;
  cpu::ActPrecision decode_act = cpu::ActPrecision::kQ8;
  PrefillActivations prefill_act;
  KvCacheOptions kv;
  // CUDA only.
  double gpu_memory_utilization = 0.9;
};

Result<std::unique_ptr<ChatBackend>> make_cpu_chat_backend(const Model& m,
                                                           const ChatBackendParams& p);
// Built without CUDA: the "frugal was built without CUDA" error (cuda_not_built()).
Result<std::unique_ptr<ChatBackend>> make_cuda_chat_backend(const Model& m,
                                                            const ChatBackendParams& p);

}  // namespace frugal::cli
