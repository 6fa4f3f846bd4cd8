// CudaSession (model/cuda/generate_cuda.h), the GPU side of `frugal chat --device cuda`, against
// the CPU chat's engine on the same weights (generate() over one shared paged BF16 KV pool with
// prefix caching, as chat_cpu.cpp runs it):
//   - a 2-turn greedy chat (turn 2 = turn 1's prompt + answer + a new message) gives the CPU's
//     tokens in both turns; turn 2 keeps the K/V of everything but the last answer token and
//     prefills only the rest; a session that keeps no K/V (every turn prefilled whole) gives
//     the same tokens; a prompt that rewrites the history (a shorter common prefix) keeps only
//     that prefix and still matches the CPU;
//   - a long conversation: an answer runs into the context (stop "context full", the CPU's
//     tokens), the next, longer prompt is OutOfRange naming the context size, and the session
//     still answers a short prompt afterwards (as after /reset).
#include <memory>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "cuda_random_model.h"
#include "cuda_test_util.h"
#include "model/cuda/generate_cuda.h"
#include "model/kv_cache.h"
#include "runtime/generate.h"

namespace frugal::cuda {
namespace {

// A tied-embedding Llama with F32 weights exactly representable in bf16, 96 positions.
Model chat_model(uint32_t seed) {
  ModelConfig c = test::small_random_config();
  c.name = "tiny";
  c.max_seq_len = 96;
  c.tied_embeddings = true;
  return test::random_model(c, seed);
}

// The CPU chat's engine: every turn through generate() on one shared paged pool (BF16 K/V, the
// GPU's cache dtype) holding sequences of n_ctx positions.
class CpuChat {
 public:
  CpuChat(const Model& m, int64_t n_ctx) : m_(m), pool_(2) {
    KvPoolOptions po;
    po.dtype = cpu::KvDType::kBF16;
    po.block_size = 8;
    po.max_seq_len = n_ctx;
    po.prefix_caching = true;
    po.budget_bytes = *kv_pool_bytes_for_tokens(m.config, po.dtype, po.block_size, n_ctx + 64);
    auto kv = KvPool::create(m.config, po);
    EXPECT_TRUE(kv.ok()) << kv.status().to_string();
    if (kv.ok()) kv_ = *kv;
  }
  Result<GenerateStats> turn(const std::vector<int32_t>& prompt, int64_t n_new,
                             std::vector<int32_t>& out) {
    GenerateParams p;
    p.max_new_tokens = n_new;
    p.sampler.temperature = 0.0f;
    p.shared_kv = SharedKv{kv_};
    out.clear();
    return generate(m_, pool_, prompt, p, [&](int32_t t) { out.push_back(t); return true; });
  }

 private:
  const Model& m_;
  ThreadPool pool_;
  std::shared_ptr<KvPool> kv_;
};

Result<GenerateStats> gpu_turn(CudaSession& s, const std::vector<int32_t>& prompt, int64_t n_new,
                               std::vector<int32_t>& out) {
  CudaTurnParams tp;
  tp.max_new_tokens = n_new;
  tp.sampler.temperature = 0.0f;
  out.clear();
  return s.generate(prompt, tp, [&](int32_t t) { out.push_back(t); return true; });
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b,
                            const std::vector<int32_t>& c = {}) {
  a.insert(a.end(), b.begin(), b.end());
  a.insert(a.end(), c.begin(), c.end());
  return a;
}

TEST(CudaChat, TwoTurnsGreedyMatchTheCpuChatAndKeepTheKv) {
  FRUGAL_REQUIRE_GPU();
  const Model m = chat_model(21);
  const int64_t n_ctx = 96;
  CpuChat cpu(m, n_ctx);
  const std::vector<int32_t> p1 = {5, 77, 300, 12, 999, 1, 64};
  std::vector<int32_t> c1, c2, c3;
  ASSERT_TRUE(cpu.turn(p1, 10, c1).ok());
  ASSERT_EQ(c1.size(), 10u);
  // Turn 2: the conversation so far, then the template's end of turn and a new message.
  const std::vector<int32_t> p2 = concat(p1, c1, {13, 400, 7, 250});
  ASSERT_TRUE(cpu.turn(p2, 12, c2).ok());
  // Turn 3 rewrites the history after the first message.
  const std::vector<int32_t> p3 = concat(p1, {8, 9, 10, 11, 12});
  ASSERT_TRUE(cpu.turn(p3, 8, c3).ok());

  CudaSessionParams sp;
  sp.n_ctx = n_ctx;
  sp.gpu_memory_utilization = 0.1;  // one session at a time: each takes the whole budget
  sp.max_prefill_tokens = 5;        // turn 1's prompt in two chunks
  for (const bool reuse : {true, false}) {
    SCOPED_TRACE(reuse ? "K/V kept between turns" : "every turn prefilled whole");
    sp.reuse_kv = reuse;
    ASSIGN_OK(gpu, CudaSession::create(m, sp));
    std::vector<int32_t> g1, g2, g3;
    ASSIGN_OK(s1, gpu_turn(*gpu, p1, 10, g1));
    EXPECT_EQ(g1, c1);
    EXPECT_EQ(s1.n_prompt_cached, 0);
    ASSIGN_OK(s2, gpu_turn(*gpu, p2, 12, g2));
    EXPECT_EQ(g2, c2);
    EXPECT_EQ(s2.n_prompt, (int64_t)p2.size());
    // Every token's K/V but the last answer token's (sampled, never decoded) was kept.
    EXPECT_EQ(s2.n_prompt_cached, reuse ? (int64_t)(p1.size() + c1.size() - 1) : 0);
    ASSIGN_OK(s3, gpu_turn(*gpu, p3, 8, g3));
    EXPECT_EQ(g3, c3);
    EXPECT_EQ(s3.n_prompt_cached, reuse ? (int64_t)p1.size() : 0);  // only the shared prefix
  }
}

TEST(CudaChat, LongConversationHitsTheContextLimitCleanly) {
  FRUGAL_REQUIRE_GPU();
  const Model m = chat_model(22);
  const int64_t n_ctx = 40;
  CpuChat cpu(m, n_ctx);
  CudaSessionParams sp;
  sp.n_ctx = n_ctx;
  sp.gpu_memory_utilization = 0.1;
  ASSIGN_OK(gpu, CudaSession::create(m, sp));
  EXPECT_EQ(gpu->n_ctx(), n_ctx);

  std::vector<int32_t> p1(20);
  for (size_t i = 0; i < p1.size(); ++i) p1[i] = (int32_t)(37 * i + 11) % 1003;
  std::vector<int32_t> c1, g1;
  ASSIGN_OK(cs, cpu.turn(p1, 30, c1));
  ASSIGN_OK(gs, gpu_turn(*gpu, p1, 30, g1));
  EXPECT_EQ(gs.stop, StopReason::kContextFull);
  EXPECT_EQ(cs.stop, StopReason::kContextFull);
  EXPECT_EQ(g1, c1);
  EXPECT_EQ(g1.size(), 21u);  // positions 20..40: the last one fills the context

  // The next turn no longer fits: a clean error naming the sizes.
  const std::vector<int32_t> p2 = concat(p1, g1, {3});
  std::vector<int32_t> g2;
  auto r = gpu_turn(*gpu, p2, 5, g2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("context size 40"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(g2.empty());

  // A new, short conversation on the same session works and matches the CPU.
  const std::vector<int32_t> p3 = {4, 5, 6};
  std::vector<int32_t> c3, g3;
  ASSERT_TRUE(cpu.turn(p3, 6, c3).ok());
  ASSIGN_OK(s3, gpu_turn(*gpu, p3, 6, g3));
  EXPECT_EQ(g3, c3);
  EXPECT_EQ(s3.n_prompt_cached, 0);  // p3 shares no prefix with the previous conversation

  EXPECT_EQ(CudaSession::create(m, CudaSessionParams{0}).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(CudaSession::create(m, CudaSessionParams{97}).status().code(),
            StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace frugal::cuda
