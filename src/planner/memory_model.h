// Memory model, per device: weights by tensor role in the chosen formats (scale/zero overhead
// included), KV cache in whole pages, activation peak of a prefill chunk and of a decode step,
// and an explicit runtime overhead. Tensor parallelism divides weights and KV; offloaded layers
// (and their KV) move to host memory.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "planner/plan_types.h"

namespace frugal::planner {

// KV heads each device holds at tensor-parallel degree `tp`:
//   n_kv_heads % tp == 0  -> n_kv_heads / tp
//   tp % n_kv_heads == 0  -> 1 (each KV head replicated tp / n_kv_heads times; never below one)
//   otherwise             -> InvalidArgument
// Also InvalidArgument unless tp divides the query heads and the FFN size, and tp >= 1.
Result<int> kv_heads_per_device(const ModelSpec& m, int tp);

// Weight bytes per device for every tensor role, over all layers (offload not applied).
struct ShardedWeights {
  std::array<uint64_t, (size_t)TensorRole::kCount> bytes{};  // per device
  uint64_t layer_bytes = 0;        // one decoder layer (attention, FFN, router, its norms)
  uint64_t expert_bytes = 0;       // one expert of one layer (MoE; 0 for dense)
  uint64_t quantized_elems = 0;    // weights that need dequantization, per device, all layers
  int kv_heads = 0;                // per device
  uint64_t total() const {
    uint64_t t = 0;
    for (uint64_t b : bytes) t += b;
    return t;
  }
};
Result<ShardedWeights> shard_weights(const PlanContext& ctx, const Deployment& dep);

// KV bytes of one token of one sequence, on one device, over `layers` layers:
// 2 (K and V) x layers x kv_heads_per_device x bytes(one head vector in the KV format).
uint64_t kv_bytes_per_token(const ModelSpec& m, KvFormat kv, int kv_heads_per_device, int layers);

struct MemoryEstimate {
  // Device side (every TP device holds the same amount).
  uint64_t w_embedding = 0;  // token table + learned positions
  uint64_t w_lm_head = 0;    // 0 when tied
  uint64_t w_layers = 0;     // decoder layers resident on the device
  uint64_t w_other = 0;      // final norm
  uint64_t weights = 0;
  uint64_t kv = 0;
  uint64_t activations = 0;
  uint64_t overhead = 0;
  uint64_t total = 0;
  uint64_t budget = 0;       // device memory x mem_util
  bool fits = false;
  // Host side (offloaded layers and their KV).
  uint64_t host_weights = 0;
  uint64_t host_kv = 0;
  uint64_t host_budget = 0;
  bool host_fits = true;
  // Details used by the time model and the reports.
  ShardedWeights sharded;
  int device_layers = 0;
  uint64_t kv_token_bytes = 0;   // one token, one sequence, device layers, one device
  int64_t kv_tokens_per_seq = 0; // context rounded up to whole pages
  uint64_t act_prefill = 0;
  uint64_t act_decode = 0;
};

Result<MemoryEstimate> estimate_memory(const PlanContext& ctx, const Deployment& dep,
                                       ExplainLog* log = nullptr);

// Activation peak of one forward step over `tokens` new tokens attending to `keys` keys, from
// `seqs` sequences (logits are computed for one token per sequence), per device.
uint64_t activation_peak(const PlanContext& ctx, int tp, int64_t tokens, int64_t keys,
                         int64_t seqs, ExplainLog* log = nullptr, const char* phase = "");

}  // namespace frugal::planner
