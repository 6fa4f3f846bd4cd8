// A KV pool shared by requests: prefix reuse across requests through the engine, admission
// (wait, retry later, never fits), and a pool running dry mid-generation.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "model/kv_cache.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "test_util.h"

namespace frugal {
namespace {

// The shapes of a small GQA model; the pool needs no weights.
ModelConfig small_config() {
  ModelConfig c;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.hidden_dim = 128;
  c.vocab_size = 100;
  c.max_seq_len = 256;
  return c;
}

std::shared_ptr<KvPool> make_pool(int n_blocks, int32_t bs = 4, bool prefix = true) {
  const ModelConfig c = small_config();
  KvPoolOptions o;
  o.block_size = bs;
  o.budget_bytes = *kv_pool_bytes_for_tokens(c, o.dtype, bs, (int64_t)n_blocks * bs);
  o.prefix_caching = prefix;
  auto p = KvPool::create(c, o);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return *p;
}

std::vector<int32_t> ids(int n, int start = 1) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = start + i;
  return v;
}

TEST(KvPool, CreateErrors) {
  const ModelConfig c = small_config();
  KvPoolOptions o;
  EXPECT_EQ(KvPool::create(c, o).status().code(), StatusCode::kInvalidArgument);  // no budget
  o.budget_bytes = 1 << 20;
  o.block_size = 6;
  EXPECT_EQ(KvPool::create(c, o).status().code(), StatusCode::kInvalidArgument);
  o.block_size = 16;
  o.budget_bytes = 100;  // smaller than one block
  EXPECT_EQ(KvPool::create(c, o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_pool_bytes_for_tokens(c, cpu::KvDType::kF32, 6, 10).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(*kv_pool_bytes_for_tokens(c, cpu::KvDType::kF32, 16, 17),
            2 * *kv_pool_bytes_for_tokens(c, cpu::KvDType::kF32, 16, 16));
}

TEST(KvPool, AdmitReusesAPrefixWrittenByAnEarlierRequest) {
  auto pool = make_pool(16);
  const std::vector<int32_t> a = ids(10);
  {
    auto kv = pool->open();
    ASSERT_TRUE(kv.ok());
    auto n = kv->admit(a);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0);
    ASSERT_TRUE(kv->prepare(a, 0).ok());  // admitted positions: no new allocation
    EXPECT_EQ(kv->length(), 10);
  }  // closing publishes the written full blocks (2 of 4 tokens; the partial third is not)
  std::vector<int32_t> b = a;
  b.push_back(77);
  auto kv = pool->open();
  ASSERT_TRUE(kv.ok());
  auto n = kv->admit(b);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 8);
  EXPECT_EQ(kv->length(), 11);
  // The caller continues from the cached prefix; another position is refused.
  EXPECT_EQ(kv->prepare(std::span<const int32_t>(b).subspan(3), 3).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(kv->prepare(std::span<const int32_t>(b).subspan(8), 8).ok());
  const kv::KvStats s = pool->stats();
  EXPECT_EQ(s.reused_blocks, 2);
}

TEST(KvPool, SaltSeparatesTenants) {
  auto pool = make_pool(16);
  const std::vector<int32_t> a = ids(9);
  {
    auto kv = pool->open(/*salt=*/1);
    ASSERT_TRUE(kv->admit(a).ok());
    ASSERT_TRUE(kv->prepare(a, 0).ok());
  }
  auto other = pool->open(/*salt=*/2);
  EXPECT_EQ(*other->admit(a), 0);
  auto same = pool->open(/*salt=*/1);
  EXPECT_EQ(*same->admit(a), 8);
}

TEST(KvPool, UncommittedBlocksAreNotShared) {
  // A request that has been admitted but has not written its K/V yet must not hand its blocks
  // to another request.
  auto pool = make_pool(16);
  const std::vector<int32_t> a = ids(9);
  auto first = pool->open();
  ASSERT_EQ(*first->admit(a), 0);
  auto second = pool->open();
  EXPECT_EQ(*second->admit(a), 0);
}

TEST(KvPool, NoWaitIsRetryLaterAndNeverFitsIsRefused) {
  auto pool = make_pool(4);  // 16 tokens
  auto big = pool->open(0, Admission::kNoWait);
  EXPECT_EQ(big->admit(ids(17)).status().code(), StatusCode::kResourceExhausted);
  auto holder = pool->open();
  ASSERT_TRUE(holder->admit(ids(12, 50)).ok());  // 3 of 4 blocks
  auto later = pool->open(0, Admission::kNoWait);
  Result<int64_t> r = later->admit(ids(8, 200));
  ASSERT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("retry later"), std::string::npos);
  EXPECT_EQ(pool->stats().used_blocks, 3);  // the refused request holds nothing
  auto timed = pool->open(0, Admission::kWait, /*wait_ms=*/30);
  EXPECT_EQ(timed->admit(ids(8, 200)).status().code(), StatusCode::kUnavailable);
}

TEST(KvPool, WaitingRequestIsAdmittedWhenAnotherFinishes) {
  auto pool = make_pool(4);
  auto opened = pool->open();
  ASSERT_TRUE(opened.ok());
  auto holder = std::make_unique<KvCache>(std::move(*opened));
  ASSERT_TRUE(holder->admit(ids(12, 50)).ok());
  std::atomic<bool> admitted{false};
  Status result;
  std::thread waiter([&] {
    auto kv = pool->open(0, Admission::kWait, /*wait_ms=*/10000);
    Result<int64_t> r = kv->admit(ids(8, 200));
    result = r.status();
    admitted = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(admitted.load());  // still waiting: only one block is free
  holder.reset();                 // the first request finishes
  waiter.join();
  EXPECT_TRUE(admitted.load());
  EXPECT_TRUE(result.ok()) << result.to_string();
}

TEST(KvPool, GrowthPastThePoolIsAnErrorNotAWait) {
  auto pool = make_pool(2, 4);
  auto kv = pool->open();
  ASSERT_TRUE(kv->admit(ids(6)).ok());
  ASSERT_TRUE(kv->prepare(ids(6), 0).ok());
  ASSERT_TRUE(kv->prepare(ids(2, 7), 6).ok());
  EXPECT_EQ(kv->prepare(ids(1, 9), 8).code(), StatusCode::kResourceExhausted);
}

// ---- through the engine (stories260K: small and real) ---------------------------------------

class SharedKvGenerate : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = test::shared_data("stories260K.bin");
    if (!test::file_exists(path)) GTEST_SKIP() << "no " << path;
    auto m = load_model(path);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::make_unique<Model>(std::move(*m));
  }
  std::vector<int32_t> greedy(std::span<const int32_t> prompt, GenerateParams gp, GenerateStats* st) {
    std::vector<int32_t> out;
    gp.sampler.temperature = 0;
    gp.ignore_eos = true;
    auto r = generate(*model_, pool_, prompt, gp, [&](int32_t t) {
      out.push_back(t);
      return true;
    });
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (r.ok() && st) *st = *r;
    return out;
  }
  std::unique_ptr<Model> model_;
  ThreadPool pool_{2};
};

TEST_F(SharedKvGenerate, SecondRequestSkipsTheSharedPrefixAndGeneratesTheSame) {
  KvPoolOptions po;
  po.block_size = 8;
  po.budget_bytes = 8 << 20;
  auto kvp = KvPool::create(model_->config, po);
  ASSERT_TRUE(kvp.ok()) << kvp.status().to_string();
  std::vector<int32_t> system;  // a shared "system prompt" of 60 tokens
  for (int i = 0; i < 60; ++i) system.push_back(1 + (i * 37) % 500);
  std::vector<int32_t> p1 = system, p2 = system;
  p1.insert(p1.end(), {11, 12, 13});
  p2.insert(p2.end(), {21, 22, 23, 24});

  GenerateParams shared;
  shared.max_new_tokens = 12;
  shared.shared_kv = SharedKv{*kvp};
  GenerateStats s1, s2, s_ref;
  const auto out1 = greedy(p1, shared, &s1);
  EXPECT_EQ(s1.n_prompt_cached, 0);
  const auto out2 = greedy(p2, shared, &s2);
  EXPECT_EQ(s2.n_prompt_cached, 56);  // 7 full blocks of the shared 60 tokens
  GenerateParams own;
  own.max_new_tokens = 12;
  const auto ref2 = greedy(p2, own, &s_ref);
  EXPECT_EQ(out2, ref2);  // reusing the cached K/V changes nothing
  EXPECT_EQ(out1.size(), 12u);
  EXPECT_GT((*kvp)->stats().hit_rate(), 0.0);
}

TEST_F(SharedKvGenerate, PoolRunningDryStopsWithTheTokensSoFar) {
  KvPoolOptions po;
  po.block_size = 8;
  po.budget_bytes = *kv_pool_bytes_for_tokens(model_->config, po.dtype, 8, 32);  // 4 blocks
  auto kvp = KvPool::create(model_->config, po);
  ASSERT_TRUE(kvp.ok());
  auto holder = (*kvp)->open();  // another request holds half of the pool
  ASSERT_TRUE(holder->admit(std::vector<int32_t>(16, 5)).ok());
  GenerateParams gp;
  gp.max_new_tokens = 100;
  gp.shared_kv = SharedKv{*kvp};
  GenerateStats st;
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const auto out = greedy(prompt, gp, &st);
  EXPECT_EQ(st.stop, StopReason::kKvFull);
  EXPECT_EQ((int64_t)out.size(), 16 - 10 + 1);  // positions 10..15 decoded + the last sample
  // A request longer than a sequence can be is refused with the reason.
  std::vector<int32_t> huge(40, 3);
  auto r = generate(*model_, pool_, huge, gp, [](int32_t) { return true; });
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  // One that does not fit now is refused when asked not to wait.
  auto holder2 = (*kvp)->open();
  ASSERT_TRUE(holder2->admit(std::vector<int32_t>(9, 6)).ok());
  gp.shared_kv->admission = Admission::kNoWait;
  auto busy = generate(*model_, pool_, prompt, gp, [](int32_t) { return true; });
  EXPECT_EQ(busy.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace frugal
