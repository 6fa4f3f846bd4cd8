// Memory model against hand-computed cases: KV bytes per token, page rounding, TP sharding and
// its KV-head rule, weight bytes with quantization overhead, activation peaks, offload.
#include <gtest/gtest.h>

#include "planner/hardware.h"
#include "planner/memory_model.h"
#include "planner/presets.h"

namespace frugal::planner {
namespace {

PlanContext context(const std::string& model, const std::string& hw) {
  PlanContext c;
  c.model = find_preset(model).value();
  c.device = find_hardware(hw).value();
  c.host = cpu_hardware(256, 100, 2, "test");
  return c;
}

Deployment dep(WeightFormat w, KvFormat kv, int tp = 1, int offload = 0) {
  Deployment d;
  d.weights = w;
  d.kv = kv;
  d.tp = tp;
  d.offload_layers = offload;
  return d;
}

TEST(PlannerMemory, KvBytesPerTokenByHand) {
  // Llama-3.1-8B fp16: 2 * 32 layers * 8 KV heads * 128 * 2 B = 131,072 (REFERENCES.md).
  const ModelSpec l8 = find_preset("llama-3.1-8b").value();
  EXPECT_EQ(kv_bytes_per_token(l8, KvFormat::kF16, 8, 32), 131072u);
  // q8_0: 2 * 32 * 8 * (4 blocks x 34 B) = 69,632.
  EXPECT_EQ(kv_bytes_per_token(l8, KvFormat::kQ8_0, 8, 32), 69632u);
  // Llama-2-70B fp16: 2 * 80 * 8 * 128 * 2 = 327,680.
  EXPECT_EQ(kv_bytes_per_token(find_preset("llama-2-70b").value(), KvFormat::kF16, 8, 80), 327680u);
  // Falcon-7B (MQA, head_dim 64): 2 * 32 * 1 * 64 * 2 = 8,192.
  EXPECT_EQ(kv_bytes_per_token(find_preset("falcon-7b").value(), KvFormat::kF16, 1, 32), 8192u);
  // Gemma-2-9B (head_dim 256, 8 KV heads, 42 layers): 2 * 42 * 8 * 256 * 2 = 344,064.
  EXPECT_EQ(kv_bytes_per_token(find_preset("gemma-2-9b").value(), KvFormat::kF16, 8, 42), 344064u);
}

TEST(PlannerMemory, KvCacheRoundsUpToWholePages) {
  PlanContext c = context("llama-3.1-8b", "h100-sxm");
  c.workload.batch = 3;
  c.workload.context = 4097;  // 257 pages of 16 = 4112 tokens
  auto m = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->kv_tokens_per_seq, 4112);
  EXPECT_EQ(m->kv, 3u * 4112u * 131072u);
  c.workload.kv_block = 1;
  m = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16));
  EXPECT_EQ(m->kv, 3u * 4097u * 131072u);
  c.workload.kv_block = 4097;
  m = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16));
  EXPECT_EQ(m->kv_tokens_per_seq, 4097);
}

TEST(PlannerMemory, TensorParallelKvHeadRule) {
  const ModelSpec l8 = find_preset("llama-3.1-8b").value();  // 32 heads, 8 KV heads
  EXPECT_EQ(kv_heads_per_device(l8, 1).value(), 8);
  EXPECT_EQ(kv_heads_per_device(l8, 2).value(), 4);
  EXPECT_EQ(kv_heads_per_device(l8, 8).value(), 1);
  EXPECT_EQ(kv_heads_per_device(l8, 16).value(), 1);  // replicated twice, never below one
  EXPECT_EQ(kv_heads_per_device(l8, 32).value(), 1);
  EXPECT_FALSE(kv_heads_per_device(l8, 3).ok());       // does not divide the 32 query heads
  EXPECT_FALSE(kv_heads_per_device(l8, 0).ok());
  EXPECT_FALSE(kv_heads_per_device(l8, 64).ok());      // more devices than query heads
  // Falcon-7B: 71 query heads, MQA: only tp 1 or 71 divide the heads; 71 also divides 18176.
  const ModelSpec f7 = find_preset("falcon-7b").value();
  EXPECT_EQ(kv_heads_per_device(f7, 71).value(), 1);
  EXPECT_FALSE(kv_heads_per_device(f7, 2).ok());
  // 12 heads, 4 KV heads, tp 6: 6 divides 12 but neither divides nor is a multiple of 4.
  ModelSpec odd = l8;
  odd.name = "odd";
  odd.hidden = 1536;
  odd.n_heads = 12;
  odd.n_kv_heads = 4;
  odd.ffn_dim = 6144;
  Result<int> r = kv_heads_per_device(odd, 6);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("4 KV heads"), std::string::npos) << r.status().message();
  EXPECT_EQ(kv_heads_per_device(odd, 2).value(), 2);
  odd.ffn_dim = 6146;  // not divisible by 4
  EXPECT_FALSE(kv_heads_per_device(odd, 4).ok());
}

TEST(PlannerMemory, KvShardingWithReplication) {
  PlanContext c = context("llama-3.1-70b", "h100-sxm");  // 80 layers, 8 KV heads
  c.workload.batch = 1;
  c.workload.context = 1024;
  for (int tp : {1, 2, 4, 8, 16}) {
    auto m = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16, tp));
    ASSERT_TRUE(m.ok()) << m.status().message();
    const uint64_t heads = tp <= 8 ? 8 / tp : 1;
    EXPECT_EQ(m->kv_token_bytes, 2u * 80u * heads * 256u) << "tp " << tp;
  }
}

TEST(PlannerMemory, WeightBytesByHand) {
  PlanContext c = context("llama-2-7b", "a100-80gb");
  c.workload.context = 16;
  c.workload.batch = 1;
  // bf16 everywhere: 2 bytes x 6,738,415,616 params.
  auto m = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->weights, 2u * 6738415616u);
  // int4 g128 matrices (6,476,005,376 weights: 4.125 bits each = 3,339,190,272 B) + bf16
  // embedding and head (2 x 262,144,000 B) + bf16 norms (2 x 266,240 B).
  m = estimate_memory(c, dep(WeightFormat::kInt4, KvFormat::kF16));
  EXPECT_EQ(m->weights, 3339190272u + 524288000u + 532480u);
  // tp 2, bf16: matrices and vocab rows halve (32000 / 2), norms are replicated.
  m = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16, 2));
  EXPECT_EQ(m->weights, 6476005376u + 262144000u + 532480u);
  // Embedding format override: q8_0 embedding and head = 2 x 32000 x 128 blocks x 34 B.
  Deployment d = dep(WeightFormat::kInt4, KvFormat::kF16);
  d.embeddings = WeightFormat::kQ8_0;
  m = estimate_memory(c, d);
  EXPECT_EQ(m->weights, 3339190272u + 2u * 32000u * 128u * 34u + 532480u);
}

TEST(PlannerMemory, MoeKeepsEveryExpertResident) {
  PlanContext c = context("mixtral-8x7b", "h100-sxm");
  c.workload.context = 16;
  auto m = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->weights, 2u * 46702792704u);
  // One expert of one layer: 3 x 4096 x 14336 x 2 B.
  EXPECT_EQ(m->sharded.expert_bytes, 3u * 4096u * 14336u * 2u);
}

TEST(PlannerMemory, ActivationPeakByHand) {
  PlanContext c = context("llama-3.1-8b", "h100-sxm");
  // No FlashAttention, 2048 tokens x 2048 keys, 1 sequence, 16-bit activations:
  // residual 2*2048*4096*2 = 33,554,432; attention: qkv 2048*6144*2 = 25,165,824, output
  // 2048*4096*2 = 16,777,216, scores 32*2048*2048*(4+2) = 805,306,368; FFN 2048*14336*2*3 =
  // 176,160,768 (smaller); logits 128256*4 = 513,024.
  c.workload.flash_attention = false;
  EXPECT_EQ(activation_peak(c, 1, 2048, 2048, 1), 33554432u + 25165824u + 16777216u + 805306368u + 513024u);
  // FlashAttention: scores become 32*2048*4 B of log-sum-exp, so the FFN branch is the peak.
  c.workload.flash_attention = true;
  EXPECT_EQ(activation_peak(c, 1, 2048, 2048, 1), 33554432u + 176160768u + 513024u);
}

TEST(PlannerMemory, OffloadMovesLayersAndTheirKvToTheHost) {
  PlanContext c = context("llama-2-70b", "a100-40gb");
  c.workload.context = 4096;
  auto all = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16));
  auto off = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16, 1, 60));
  ASSERT_TRUE(all.ok() && off.ok());
  EXPECT_FALSE(all->fits);
  EXPECT_EQ(off->device_layers, 20);
  EXPECT_EQ(all->weights - off->weights, 60u * all->sharded.layer_bytes);
  EXPECT_EQ(off->host_weights, 60u * all->sharded.layer_bytes);
  EXPECT_EQ(off->kv + off->host_kv, all->kv);
  EXPECT_EQ(off->host_kv, 4096u * 2u * 60u * 8u * 256u);
  EXPECT_FALSE(estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16, 1, 81)).ok());
}

TEST(PlannerMemory, FitAgainstBudget) {
  PlanContext c = context("llama-2-70b", "a100-40gb");
  c.workload.context = 4096;
  auto bf16 = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16));
  auto int4 = estimate_memory(c, dep(WeightFormat::kInt4Gptq, KvFormat::kF16));
  ASSERT_TRUE(bf16.ok() && int4.ok());
  EXPECT_FALSE(bf16->fits);
  EXPECT_TRUE(int4->fits);
  EXPECT_EQ(int4->budget, 40000000000u);
  EXPECT_EQ(int4->total, int4->weights + int4->kv + int4->activations + int4->overhead);
  EXPECT_EQ(int4->overhead, 1073741824u);
  c.assume.mem_util = 0.9;  // 36 GB usable: int4 (39.45 GB) no longer fits
  EXPECT_FALSE(estimate_memory(c, dep(WeightFormat::kInt4Gptq, KvFormat::kF16))->fits);
}

TEST(PlannerMemory, BadWorkloadIsAnError) {
  PlanContext c = context("llama-2-7b", "a100-80gb");
  c.workload.batch = 0;
  EXPECT_FALSE(estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16)).ok());
  c.workload.batch = 1;
  c.workload.prompt = 5000;  // longer than the context
  EXPECT_FALSE(estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16)).ok());
  c.workload.prompt = 0;
  c.workload.kv_block = 0;
  EXPECT_FALSE(estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16)).ok());
  c.workload.kv_block = 16;
  c.workload.batch = int64_t{1} << 40;
  EXPECT_FALSE(estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16)).ok());
  // The largest allowed workload saturates instead of wrapping: it simply does not fit.
  c.workload.batch = int64_t{1} << 24;
  c.workload.context = int64_t{1} << 30;
  auto m = estimate_memory(c, dep(WeightFormat::kBF16, KvFormat::kF16));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_FALSE(m->fits);
  EXPECT_GE(m->kv, uint64_t{1000000000000000000});
}

}  // namespace
}  // namespace frugal::planner
