// LlamaCuda's arena sized from --gpu-memory-utilization through the planner
// (planner/device_split.h), sampling on the device after prefill/decode, and generate_cuda
// (model/cuda/generate_cuda.h) against the CPU generate():
//   - the KV pool is the rest of utilization x device memory in whole blocks (within one block
//     plus alignment of the budget), at least the slots' max_batch x max_seq_len;
//   - a utilization too small for the weights: ResourceExhausted naming the shortfall in bytes;
//   - sample_logits on the logits a prefill / decode left on the device = the CPU Sampler's
//     sample_with_uniform on the same logits (downloaded) with the same u;
//   - greedy generation = the CPU engine's (bf16-exact random weights, BF16 KV on the CPU);
//     a seed gives the same tokens twice; with a repetition penalty, greedy tokens = the CPU
//     loop's with the same penalty (and differ from no penalty); bad input (a negative
//     penalty, prompt too long) is an error, not a crash.
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../unit/sampler_reference.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "cuda_random_model.h"
#include "cuda_test_util.h"
#include "model/cuda/generate_cuda.h"
#include "model/cuda/llama_cuda_load.h"
#include "runtime/generate.h"
#include "sampling/sampler.h"

namespace frugal::cuda {
namespace {

LlamaDims small_dims() {
  LlamaDims d;
  d.vocab = 1003;
  d.dim = 192;
  d.hidden = 328;
  d.n_layers = 2;
  d.n_heads = 3;
  d.n_kv_heads = 1;
  d.head_dim = 64;
  d.rope_half = true;
  d.tied_embeddings = true;
  return d;
}

// A tied-embedding Llama with F32 weights exactly representable in bf16 (so the GPU's bf16
// upload changes nothing).
Model tiny_model(uint32_t seed) {
  ModelConfig c = test::small_random_config();
  c.name = "tiny";
  c.max_seq_len = 96;
  c.tied_embeddings = true;
  return test::random_model(c, seed);
}

TEST(CudaArena, KvPoolGetsTheRestOfTheUtilizationBudget) {
  FRUGAL_REQUIRE_GPU();
  const LlamaDims d = small_dims();
  LlamaCudaOptions o;
  o.max_seq_len = 64;
  o.max_batch = 2;
  o.gpu_memory_utilization = 0.25;
  size_t free_b = 0, total_b = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  ASSIGN_OK(g, LlamaCuda::create(d, o));
  const LlamaCudaMemory& m = g->memory();
  const double budget = std::floor(0.25 * (double)total_b) - (double)(total_b - free_b);
  const double block = 16.0 * (double)d.kv_bytes_per_token();
  std::printf("[ info ] %s\n", m.split.c_str());
  EXPECT_FALSE(m.split.empty());
  EXPECT_GE(m.kv_blocks, 2 * 4);  // the slots' tables: 2 x 64 / 16
  EXPECT_GE((double)m.kv, (double)m.kv_blocks * block);  // + the KV range's alignment
  EXPECT_LT((double)m.kv, (double)m.kv_blocks * block + 256);
  EXPECT_LE((double)m.total, budget);
  EXPECT_LT(budget - (double)m.total, block + 1024) << "the KV pool should take the rest";

  // Decoding still works on a pool larger than the tables (block ids beyond them unused).
  FRUGAL_ASSERT_OK(g->randomize_weights(3));
  const int32_t prompt[3] = {1, 2, 3};
  ASSIGN_OK(first, g->prefill(1, prompt, 3, 0));
  EXPECT_TRUE(first >= 0 && first < d.vocab);
}

TEST(CudaArena, TooLittleMemoryNamesTheShortfall) {
  FRUGAL_REQUIRE_GPU();
  LlamaCudaOptions o;
  o.max_seq_len = 64;
  o.gpu_memory_utilization = 1e-6;  // ~150 kB of a 141 GB card: less than the weights
  auto g = LlamaCuda::create(small_dims(), o);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kResourceExhausted);
  const std::string msg = g.status().message();
  EXPECT_NE(msg.find("short by"), std::string::npos) << msg;
  EXPECT_NE(msg.find("weights"), std::string::npos) << msg;
  std::printf("[ info ] %s\n", msg.c_str());
  o.gpu_memory_utilization = 1.5;
  EXPECT_EQ(LlamaCuda::create(small_dims(), o).status().code(), StatusCode::kInvalidArgument);
}

TEST(CudaArena, SampleLogitsAfterPrefillAndDecodeMatchesCpuRule) {
  FRUGAL_REQUIRE_GPU();
  const LlamaDims d = small_dims();
  LlamaCudaOptions o;
  o.max_seq_len = 64;
  o.max_batch = 3;
  ASSIGN_OK(g, LlamaCuda::create(d, o));
  FRUGAL_ASSERT_OK(g->randomize_weights(9));
  const frugal::test::SamplerCase c{0.8f, 50, 0.9f, 0.02f};
  SampleParams sp{c.temperature, c.top_k, c.top_p, c.min_p};
  SamplerParams cp;
  cp.temperature = c.temperature;
  cp.top_k = c.top_k;
  cp.top_p = c.top_p;
  cp.min_p = c.min_p;
  Sampler cpu(cp);

  std::vector<float> logits((size_t)(3 * d.vocab));
  const int32_t prompt[5] = {7, 100, 42, 999, 3};
  ASSIGN_OK(am, g->prefill(0, prompt, 5, 0, logits.data()));
  (void)am;
  std::vector<float> row0(logits.begin(), logits.begin() + d.vocab);
  const frugal::test::ReferenceDraw ref = frugal::test::reference_draw(row0, c);
  ASSERT_GT(ref.top_p_margin, 1e-9);
  for (size_t i = 0; i < ref.ids.size(); i += 3) {
    int32_t tok = -1;
    FRUGAL_ASSERT_OK(g->sample_logits(sp, &ref.mid_u[i], 1, &tok));
    std::vector<float> l = row0;
    EXPECT_EQ(tok, cpu.sample_with_uniform(l, {}, ref.mid_u[i])) << "candidate " << i;
    EXPECT_EQ(tok, ref.ids[i]);
  }
  // A decode step of 3 slots: one uniform per row.
  for (int s = 1; s < 3; ++s) ASSERT_TRUE(g->prefill(s, prompt, 5, 0).ok());
  const int32_t toks[3] = {5, 6, 7}, pos[3] = {5, 5, 5};
  int32_t next[3];
  FRUGAL_ASSERT_OK(g->decode(toks, pos, 3, next, logits.data()));
  const double u[3] = {0.11, 0.52, 0.93};
  int32_t got[3];
  FRUGAL_ASSERT_OK(g->sample_logits(sp, u, 3, got));
  for (int r = 0; r < 3; ++r) {
    std::vector<float> l(logits.begin() + r * d.vocab, logits.begin() + (r + 1) * d.vocab);
    EXPECT_EQ(got[r], cpu.sample_with_uniform(l, {}, u[r])) << "row " << r;
  }
  EXPECT_EQ(g->sample_logits(sp, u, 4, got).code(), StatusCode::kInvalidArgument);
}

TEST(CudaGenerate, GreedyMatchesCpuAndSeedsRepeat) {
  FRUGAL_REQUIRE_GPU();
  const Model m = tiny_model(17);
  const std::vector<int32_t> prompt = {5, 77, 300, 12, 999, 1, 64};
  const int n_new = 12;

  GenerateParams cpu_p;
  cpu_p.max_new_tokens = n_new;
  cpu_p.sampler.temperature = 0.0f;
  cpu_p.kv.dtype = cpu::KvDType::kBF16;
  ThreadPool pool(2);
  std::vector<int32_t> cpu_toks, gpu_toks;
  auto cs = generate(m, pool, prompt, cpu_p, [&](int32_t t) { cpu_toks.push_back(t); return true; });
  ASSERT_TRUE(cs.ok()) << cs.status().to_string();

  CudaGenerateParams gp;
  gp.max_new_tokens = n_new;
  gp.sampler.temperature = 0.0f;
  gp.gpu_memory_utilization = 0.2;
  gp.max_prefill_tokens = 4;  // two prefill chunks
  auto gs = generate_cuda(m, prompt, gp, [&](int32_t t) { gpu_toks.push_back(t); return true; });
  ASSERT_TRUE(gs.ok()) << gs.status().to_string();
  EXPECT_EQ(gpu_toks, cpu_toks);
  EXPECT_EQ(gs->stats.n_generated, n_new);
  EXPECT_EQ(gs->stats.n_decode_steps, n_new - 1);
  std::printf("[ info ] %s; %s\n", gs->device.c_str(), gs->memory.c_str());

  // Sampling: the same seed gives the same tokens.
  gp.sampler.temperature = 0.9f;
  gp.sampler.top_k = 30;
  gp.sampler.top_p = 0.9f;
  gp.sampler.seed = 1234;
  std::vector<int32_t> a, b;
  ASSERT_TRUE(generate_cuda(m, prompt, gp, [&](int32_t t) { a.push_back(t); return true; }).ok());
  ASSERT_TRUE(generate_cuda(m, prompt, gp, [&](int32_t t) { b.push_back(t); return true; }).ok());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), (size_t)n_new);
}

// The repetition penalty on the device: greedy tokens equal the CPU generate loop's with the
// same penalty, and the penalty changes the text (so it was applied).
TEST(CudaGenerate, RepetitionPenaltyMatchesCpu) {
  FRUGAL_REQUIRE_GPU();
  const Model m = tiny_model(17);
  const std::vector<int32_t> prompt = {5, 77, 300, 12, 999, 1, 64, 5, 77};
  const int n_new = 24;
  auto run_cpu = [&](float penalty) {
    GenerateParams p;
    p.max_new_tokens = n_new;
    p.sampler.temperature = 0.0f;
    p.sampler.repeat_penalty = penalty;
    p.sampler.repeat_last_n = 16;
    p.kv.dtype = cpu::KvDType::kBF16;
    ThreadPool pool(2);
    std::vector<int32_t> toks;
    auto r = generate(m, pool, prompt, p, [&](int32_t t) { toks.push_back(t); return true; });
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return toks;
  };
  auto run_gpu = [&](float penalty) {
    CudaGenerateParams gp;
    gp.max_new_tokens = n_new;
    gp.sampler.temperature = 0.0f;
    gp.sampler.repeat_penalty = penalty;
    gp.sampler.repeat_last_n = 16;
    gp.gpu_memory_utilization = 0.2;
    std::vector<int32_t> toks;
    auto r = generate_cuda(m, prompt, gp, [&](int32_t t) { toks.push_back(t); return true; });
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return toks;
  };
  const auto plain = run_gpu(1.0f), cpu = run_cpu(2.5f), gpu = run_gpu(2.5f);
  EXPECT_EQ(gpu, cpu);
  EXPECT_EQ(gpu.size(), (size_t)n_new);
  EXPECT_NE(gpu, plain);
}

TEST(CudaGenerate, BadInputIsAnError) {
  FRUGAL_REQUIRE_GPU();
  const Model m = tiny_model(18);
  auto ignore = [](int32_t) { return true; };
  CudaGenerateParams gp;
  gp.sampler.repeat_penalty = -1.0f;
  EXPECT_EQ(generate_cuda(m, std::vector<int32_t>{1, 2}, gp, ignore).status().code(),
            StatusCode::kInvalidArgument);
  gp.sampler.repeat_penalty = 1.0f;
  EXPECT_EQ(generate_cuda(m, std::vector<int32_t>(100, 1), gp, ignore).status().code(),
            StatusCode::kOutOfRange);  // longer than the model's 96 positions
  EXPECT_EQ(generate_cuda(m, std::vector<int32_t>{1, 5000}, gp, ignore).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(generate_cuda(m, std::vector<int32_t>{}, gp, ignore).status().code(),
            StatusCode::kInvalidArgument);
  gp.gpu_memory_utilization = 1e-6;
  auto r = generate_cuda(m, std::vector<int32_t>{1, 2}, gp, ignore);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("short by"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace frugal::cuda
