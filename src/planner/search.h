// Option search: enumerate weight format x KV format x tensor-parallel degree x layers offloaded
// to the host, drop what does not fit, rank the rest by predicted decode throughput per device.
// Also the capacity questions: the largest batch, the longest context that fit.
#pragma once

#include <optional>
#include <vector>

#include "base/status.h"
#include "planner/memory_model.h"
#include "planner/plan_types.h"
#include "planner/time_model.h"

namespace frugal::planner {

struct PlanOption {
  Deployment dep;
  MemoryEstimate mem;
  TimeEstimate time;
  char tier = 'A';         // quality tier, the worse of weights and KV (quality.h)
  double delta_ppl = 0;    // typical perplexity increase (weights + KV), 7B-model literature
  bool fits = false;
  std::string reason;      // why it was rejected ("needs 52.1 GB of 40.0 GB", an invalid tp, ...)
  double score = 0;        // ranking key: decode tokens/s per device (aggregate / tp)
};

struct SearchSpace {
  std::vector<WeightFormat> weights;  // matrices' formats to try
  bool include_file_weights = false;  // also the model file's own tensors (GGUF input)
  std::vector<KvFormat> kv;
  std::vector<int> tps;
  bool allow_offload = true;          // try the fewest layers on the host that makes it fit
  int fixed_offload = -1;             // >= 0: every option keeps exactly this many layers on host
  std::optional<WeightFormat> embeddings;  // embedding/LM-head format (default: 16-bit)
  char min_tier = 'D';                // drop options below this quality tier
};

// Defaults by device: GPUs try bf16, fp8 (where FP8 tensor cores exist), int8, int4-gptq and
// KV f16/fp8/int4; the CPU tries f16, q8_0, q6_k, q4_k, q4_0 and KV f16/q8_0/q4_0. TP degrees
// 1, 2, 4, 8 up to ctx.max_devices that the model's heads allow (kv_heads_per_device). A GGUF
// input adds its own weights ("file").
SearchSpace default_search_space(const PlanContext& ctx);

// Memory + time + quality of one deployment. An invalid deployment (tp rule, offload range) is
// an error; one that does not fit is a PlanOption with fits == false and the reason.
Result<PlanOption> evaluate_option(const PlanContext& ctx, const Deployment& dep,
                                   ExplainLog* log = nullptr);

// All options, fitting ones first, then the rejected ones with reasons. Fitting options are
// ranked by decode tokens/s per device in 5% steps; within a step, better quality first.
Result<std::vector<PlanOption>> search_options(const PlanContext& ctx, const SearchSpace& space);

// Largest batch (sequences of the workload's context) that fits; 0 if not even one.
Result<int64_t> max_batch(const PlanContext& ctx, const Deployment& dep);
// Longest context per sequence (prompt = half of it) that fits at the workload's batch; 0 if
// none. Not capped at the model's trained context (reports show both).
Result<int64_t> max_context(const PlanContext& ctx, const Deployment& dep);

}  // namespace frugal::planner
