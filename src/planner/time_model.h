// Roofline time model per phase. For each phase on each device:
//   t = max(bytes / (bandwidth * eff_bw), flops / (peak * eff_flops) + t_dequant) + t_allreduce
// plus, for layers offloaded to the host, the same roofline on the host CPU run after them.
//   prefill: flops = 2 * matmul params * prompt tokens + causal attention 2*heads*hd*P*(P+1) per
//            layer and sequence + one LM-head row per sequence; bytes = weights once per chunk +
//            KV written and re-read by later chunks.
//   decode:  one step at the mean context S = prompt + output/2: flops = batch * (2 * matmul
//            params + 4 * heads * hd * S per layer); bytes = weights read (MoE: experts touched
//            by the batch) + batch * S * KV bytes per token.
//   all-reduce: 2 per layer (after attention and after the FFN), ring: 2(tp-1)/tp * message /
//            link bandwidth + 2(tp-1) * per-step latency.
#pragma once

#include "base/status.h"
#include "planner/memory_model.h"
#include "planner/plan_types.h"

namespace frugal::planner {

struct PhaseEstimate {
  double flops = 0;       // per device
  double bytes = 0;       // memory traffic per device
  double t_compute = 0;   // flops / (peak * eff)
  double t_memory = 0;    // bytes / (bandwidth * eff)
  double t_dequant = 0;   // dequantisation arithmetic on the vector units
  double t_comm = 0;      // tensor-parallel all-reduces
  double t_host = 0;      // offloaded layers on the host CPU (+ activation copies)
  double seconds = 0;
  double intensity = 0;   // flops / bytes (FLOP per byte)
  bool compute_bound = false;
};

struct TimeEstimate {
  PhaseEstimate prefill;        // all prompts of the batch
  PhaseEstimate decode;         // one decode step at the mean context
  double mean_context = 0;      // tokens attended per sequence in the mean decode step
  double ttft_s = 0;            // time to first token (the batch's prefill)
  double decode_tok_s_seq = 0;  // tokens/s of one sequence while decoding
  double decode_tok_s = 0;      // tokens/s of the batch while decoding
  double request_s = 0;         // prefill + output tokens x decode step
  double overall_tok_s = 0;     // batch * output tokens / request_s
  double machine_balance = 0;   // (peak * eff) / (bandwidth * eff), FLOP per byte
  double compute_bound_batch = 0;  // decode batch where compute time reaches memory time; < 0: never
  ComputePath compute = ComputePath::kBf16;
};

Result<TimeEstimate> estimate_time(const PlanContext& ctx, const Deployment& dep,
                                   const MemoryEstimate& mem, ExplainLog* log = nullptr);

// Expected number of distinct experts (of `n`, top-`k` each) used by `tokens` tokens, assuming
// uniform independent routing: n * (1 - (1 - k/n)^tokens).
double expected_experts_touched(int n, int k, int64_t tokens);

// Ring all-reduce time of `bytes` over `tp` devices (0 for tp == 1).
double allreduce_seconds(const Hardware& hw, double eff_link, int tp, double bytes);

}  // namespace frugal::planner
