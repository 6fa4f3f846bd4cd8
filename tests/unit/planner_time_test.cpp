// Time model against hand-computed rooflines.
#include <gtest/gtest.h>

#include <cmath>

#include "planner/hardware.h"
#include "planner/presets.h"
#include "planner/time_model.h"

namespace frugal::planner {
namespace {

struct Eval {
  MemoryEstimate mem;
  TimeEstimate time;
};

Eval run(const PlanContext& c, const Deployment& d) {
  auto m = estimate_memory(c, d);
  EXPECT_TRUE(m.ok()) << m.status().message();
  auto t = estimate_time(c, d, *m);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return {*m, *t};
}

PlanContext context(const std::string& model, const std::string& hw) {
  PlanContext c;
  c.model = find_preset(model).value();
  c.device = find_hardware(hw).value();
  c.host = cpu_hardware(256, 100, 2, "test");
  return c;
}

TEST(PlannerTime, DecodeStepByHand) {
  // Llama-2-7B bf16 on A100-80GB, batch 1, prompt 2048 + output 2048: mean context 3072.
  PlanContext c = context("llama-2-7b", "a100-80gb");
  c.workload.context = 4096;
  Deployment d;
  const Eval e = run(c, d);
  EXPECT_DOUBLE_EQ(e.time.mean_context, 3072);
  // Weights read per step: everything but the embedding table = 2 B x (6,738,415,616 -
  // 131,072,000); KV read: 3072 tokens x 2*32*32*128*2 = 524,288 B.
  const double bytes = 2.0 * (6738415616.0 - 131072000.0) + 3072.0 * 524288.0;
  EXPECT_DOUBLE_EQ(e.time.decode.bytes, bytes);
  // FLOPs: 2 x 6,476,005,376 layer weights + 2*32000*4096 LM head + 4*32*128*3072 per layer x 32.
  const double flops = 2.0 * 6476005376.0 + 2.0 * 32000 * 4096 + 4.0 * 32 * 128 * 3072 * 32;
  EXPECT_DOUBLE_EQ(e.time.decode.flops, flops);
  EXPECT_FALSE(e.time.decode.compute_bound);
  EXPECT_NEAR(e.time.decode.seconds, bytes / (2039e9 * 0.70), 1e-12);
  EXPECT_NEAR(e.time.decode_tok_s, 2039e9 * 0.70 / bytes, 1e-9);
}

TEST(PlannerTime, PrefillFlopsByHand) {
  // Llama-2-7B, one prompt of 2 tokens (context 4): 2 x 6,476,005,376 x 2 tokens + causal
  // attention 2*32*128*2*3 per layer x 32 + one LM-head row 2*32000*4096.
  PlanContext c = context("llama-2-7b", "h100-sxm");
  c.workload.context = 4;
  const Eval e = run(c, Deployment{});
  EXPECT_DOUBLE_EQ(e.time.prefill.flops, 2.0 * 6476005376.0 * 2 + 2.0 * 32 * 128 * 2 * 3 * 32 + 2.0 * 32000 * 4096);
}

TEST(PlannerTime, PhasesAreBoundWhereExpected) {
  PlanContext c = context("llama-3.1-8b", "h100-sxm");
  c.workload.context = 4096;
  const Eval e = run(c, Deployment{});
  EXPECT_TRUE(e.time.prefill.compute_bound);   // 2048 tokens: thousands of FLOP per byte
  EXPECT_FALSE(e.time.decode.compute_bound);   // batch 1: ~1 FLOP per byte
  EXPECT_GT(e.time.prefill.intensity, e.time.machine_balance);
  EXPECT_LT(e.time.decode.intensity, e.time.machine_balance);
  EXPECT_NEAR(e.time.machine_balance, 989e12 * 0.75 / (3350e9 * 0.70), 1e-9);
}

TEST(PlannerTime, ComputeBoundBatchMatchesWeightsOnlyRule) {
  // With a tiny context the KV term vanishes and B* -> (Pe/BWe) * (bytes per weight / 2):
  // the balance point for 16-bit weights, about a quarter of it for 4-bit weights.
  PlanContext c = context("llama-2-70b", "h100-sxm");
  c.workload.context = 2;
  Deployment d;
  d.tp = 4;
  Eval e = run(c, d);
  EXPECT_NEAR(e.time.compute_bound_batch / e.time.machine_balance, 1.0, 0.02);
  d.weights = WeightFormat::kInt4;
  e = run(c, d);
  EXPECT_NEAR(e.time.compute_bound_batch / e.time.machine_balance, 4.125 / 16, 0.02);
  // At a long context the KV traffic per sequence outgrows its FLOPs: never compute-bound.
  c.workload.context = 32768;
  d.weights = WeightFormat::kBF16;
  e = run(c, d);
  EXPECT_LT(e.time.compute_bound_batch, 0);
}

TEST(PlannerTime, AllReduceRingByHand) {
  const Hardware a100 = find_hardware("a100-40gb").value();
  EXPECT_EQ(allreduce_seconds(a100, 0.75, 1, 1e6), 0);
  // tp 2, 16 KiB: 2*(2-1)/2 * 16384 / (300e9 * 0.75) + 2*(2-1) * 2 us.
  EXPECT_NEAR(allreduce_seconds(a100, 0.75, 2, 16384), 16384 / 225e9 + 4e-6, 1e-15);
  // tp 8: 14/8 of the message, 14 latency steps.
  EXPECT_NEAR(allreduce_seconds(a100, 0.75, 8, 1e6), 14.0 / 8 * 1e6 / 225e9 + 28e-6, 1e-15);
}

TEST(PlannerTime, TensorParallelSpeedsDecodeButCostsAllReduces) {
  PlanContext c = context("llama-2-70b", "h100-sxm");
  c.workload.context = 4096;
  Deployment d;
  d.tp = 2;
  const Eval two = run(c, d);
  d.tp = 4;
  const Eval four = run(c, d);
  EXPECT_GT(two.time.decode.t_comm, 0);
  EXPECT_LT(four.time.decode.seconds, two.time.decode.seconds);
  EXPECT_GT(four.time.decode.seconds, two.time.decode.seconds / 2);  // all-reduces do not shrink
}

TEST(PlannerTime, MoeDecodeReadsOnlyTouchedExperts) {
  EXPECT_DOUBLE_EQ(expected_experts_touched(8, 2, 1), 2);
  EXPECT_NEAR(expected_experts_touched(8, 2, 1000), 8, 1e-9);
  EXPECT_DOUBLE_EQ(expected_experts_touched(0, 0, 5), 1);
  PlanContext c = context("mixtral-8x7b", "h100-sxm");
  c.workload.context = 2;
  const Eval e = run(c, Deployment{});
  // Batch 1 reads 2 of 8 experts: weights read = total - embedding - 6 experts x 32 layers.
  const double expert = 3.0 * 4096 * 14336 * 2;
  // (Mean context 1.5 tokens of KV: 1.5 x 2*32*8*128*2 B.)
  EXPECT_NEAR(e.time.decode.bytes - 1.5 * 2.0 * 32 * 8 * 128 * 2,
              2.0 * 46702792704.0 - 2.0 * 32000 * 4096 - 6 * expert * 32, 1.0);
}

TEST(PlannerTime, OffloadedLayersRunOnTheHost) {
  PlanContext c = context("llama-2-70b", "a100-40gb");
  c.workload.context = 4096;
  Deployment d;
  d.offload_layers = 60;
  const Eval e = run(c, d);
  EXPECT_GT(e.time.decode.t_host, 0);
  // 60 bf16 layers (855.6M weights each) from 100 GB/s host memory: ~1 s per token.
  EXPECT_NEAR(e.time.decode.t_host, 60.0 * e.mem.sharded.layer_bytes / 100e9, 0.05);
  d.tp = 2;
  auto m = estimate_memory(c, d);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(estimate_time(c, d, *m).ok());  // offload with tp > 1 is not modelled
}

}  // namespace
}  // namespace frugal::planner
