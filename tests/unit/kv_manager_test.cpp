// KV block pool / paged manager / contiguous baseline: randomized property tests against a shadow
// model of KV memory, plus the bad-input rules (block size, budget, requests that never fit).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "kv/block_pool.h"
#include "kv/contiguous_allocator.h"
#include "kv/paged_allocator.h"

namespace frugal::kv {
namespace {

void expect_stats_add_up(const KvAllocator& a) {
  const KvStats s = a.stats();
  EXPECT_EQ(s.used_blocks + s.free_blocks, s.total_blocks);
  EXPECT_LE(s.evictable_blocks, s.cached_blocks);
  EXPECT_LE(s.evictable_blocks, s.free_blocks);
  EXPECT_GE(s.used_blocks, 0);
}

TEST(KvBlockPool, RejectsBadSizes) {
  EXPECT_EQ(BlockPool::create(8, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BlockPool::create(8, 12).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BlockPool::create(0, 16).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(BlockPool::create(1, 1).ok());
  PagedAllocatorParams p;
  p.block_size = 24;
  p.n_blocks = 4;
  auto a = PagedAllocator::create(p);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("power of two"), std::string::npos);
  ContiguousAllocatorParams c;
  c.block_size = 16;
  c.n_blocks = 3;
  c.max_seq_len = 64;  // needs 4 blocks per reservation
  EXPECT_EQ(ContiguousAllocator::create(c).status().code(), StatusCode::kInvalidArgument);
}

TEST(KvBlockPool, FreeQueueOrderAndMiddleRemoval) {
  auto p = BlockPool::create(6, 4);
  ASSERT_TRUE(p.ok());
  std::vector<int32_t> got;
  ASSERT_TRUE(p->take(6, got));
  EXPECT_FALSE(p->take(1, got));
  const std::vector<int32_t> toks = {1, 2, 3, 4};
  ASSERT_TRUE(p->cache(2, hash_block({}, toks, 0), {}, toks, 0));
  ASSERT_TRUE(p->cache(4, hash_block({}, toks, 9), {}, toks, 9));
  p->unref(2);  // cached -> tail
  p->unref(0);  // blank -> head
  p->unref(4);  // cached -> tail
  p->unref(5);  // blank -> head
  EXPECT_EQ(p->free_queue(), (std::vector<int32_t>{5, 0, 2, 4}));
  EXPECT_EQ(p->n_evictable(), 2);
  p->ref(2);  // prefix hit: leaves the middle of the queue
  EXPECT_EQ(p->free_queue(), (std::vector<int32_t>{5, 0, 4}));
  ASSERT_TRUE(p->check_invariants().ok());
  got.clear();
  ASSERT_TRUE(p->take(3, got));  // blanks first, then evicts block 4
  EXPECT_EQ(got, (std::vector<int32_t>{5, 0, 4}));
  EXPECT_EQ(p->n_evicted(), 1);
  EXPECT_EQ(p->lookup(hash_block({}, toks, 9)), -1);
  EXPECT_EQ(p->lookup(hash_block({}, toks, 0)), 2);
  ASSERT_TRUE(p->check_invariants().ok());
}

TEST(KvManager, RefusesWhatNeverFitsAndDefersWhatDoesNotFitNow) {
  PagedAllocatorParams p;
  p.block_size = 16;
  p.n_blocks = 8;  // 128 tokens
  auto a = std::move(PagedAllocator::create(p).value());
  ASSERT_TRUE(a->add_sequence(1).ok());
  std::vector<int32_t> big(129, 7);
  AllocResult r = a->allocate_slots(1, big);
  EXPECT_EQ(r.status, AllocStatus::kNeverFits);
  EXPECT_NE(r.reason.find("never fit"), std::string::npos) << r.reason;
  std::vector<int32_t> t100(100, 3), t40(40, 4);
  ASSERT_TRUE(a->allocate_slots(1, t100).ok());
  ASSERT_TRUE(a->add_sequence(2).ok());
  r = a->allocate_slots(2, t40);
  EXPECT_EQ(r.status, AllocStatus::kRetryLater);
  EXPECT_NE(r.reason.find("retry later"), std::string::npos) << r.reason;
  EXPECT_EQ(a->seq_len(2), 0);  // nothing recorded on failure
  ASSERT_TRUE(a->free_sequence(1).ok());
  EXPECT_TRUE(a->allocate_slots(2, t40).ok());
  EXPECT_FALSE(a->free_sequence(1).ok());  // double free is an error, not a corruption
  EXPECT_EQ(a->allocate_slots(99, t40).status, AllocStatus::kNeverFits);
  ASSERT_TRUE(a->check_invariants().ok());
}

TEST(KvManager, ForkCopiesThePartialLastBlockOnWrite) {
  PagedAllocatorParams p;
  p.block_size = 4;
  p.n_blocks = 8;
  auto a = std::move(PagedAllocator::create(p).value());
  ASSERT_TRUE(a->add_sequence(1).ok());
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  ASSERT_TRUE(a->allocate_slots(1, five).ok());
  ASSERT_TRUE(a->commit(1).ok());
  auto f = a->fork(1, 2);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->empty());
  const std::vector<int32_t> parent_table(a->block_table(1).begin(), a->block_table(1).end());
  EXPECT_EQ(a->pool().ref_count(parent_table[0]), 2);
  EXPECT_EQ(a->pool().ref_count(parent_table[1]), 2);
  const std::vector<int32_t> one = {6};
  AllocResult r = a->allocate_slots(2, one);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.copies.size(), 1u);
  EXPECT_EQ(r.copies[0].src, parent_table[1]);
  EXPECT_EQ(r.copies[0].n_tokens, 1);
  EXPECT_EQ(a->block_table(2)[0], parent_table[0]);  // the full block stays shared
  EXPECT_NE(a->block_table(2)[1], parent_table[1]);
  r = a->allocate_slots(1, one);  // the parent is the only holder now: writes in place
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.copies.empty());
  ASSERT_TRUE(a->check_invariants().ok());
}

// Random add / match / allocate / commit / fork / free against a shadow of KV memory that
// stores, per block slot, the token id "written" there. Every sequence must read back its own
// tokens through its block table: that checks copy-on-write and prefix-cache reuse.
void run_random_workload(KvAllocator& a, uint32_t seed, bool paged) {
  std::mt19937 rng(seed);
  const int32_t bs = a.block_size();
  std::vector<int32_t> memory((size_t)a.n_blocks() * bs, -1);
  std::map<SeqId, std::vector<int32_t>> truth;
  // A few prompt templates so that prefixes repeat and hit the cache.
  std::vector<std::vector<int32_t>> templates(4);
  for (auto& t : templates)
    for (int i = 0; i < 3 * bs + 1; ++i) t.push_back((int32_t)(rng() % 50));
  SeqId next_id = 0;
  auto write = [&](SeqId id, const AllocResult& r, int64_t from) {
    for (const CopyOp& c : r.copies)
      for (int i = 0; i < c.n_tokens; ++i)
        memory[(size_t)c.dst * bs + i] = memory[(size_t)c.src * bs + i];
    auto table = a.block_table(id);
    const auto& tk = truth[id];
    for (int64_t pos = from; pos < (int64_t)tk.size(); ++pos)
      memory[(size_t)table[pos / bs] * bs + pos % bs] = tk[pos];
  };
  for (int step = 0; step < 3000; ++step) {
    const int op = (int)(rng() % 10);
    if (op < 3 || truth.empty()) {  // new sequence from a template prefix + random tail
      const SeqId id = next_id++;
      ASSERT_TRUE(a.add_sequence(id, rng() % 4 == 0 ? 7 : 0).ok());
      std::vector<int32_t> prompt = templates[rng() % templates.size()];
      prompt.resize(1 + rng() % prompt.size());
      auto m = a.match_prefix(id, prompt);
      ASSERT_TRUE(m.ok());
      truth[id].assign(prompt.begin(), prompt.begin() + *m);
      std::vector<int32_t> rest(prompt.begin() + *m, prompt.end());
      AllocResult r = a.allocate_slots(id, rest);
      if (r.ok()) {
        const int64_t from = (int64_t)truth[id].size();
        truth[id].insert(truth[id].end(), rest.begin(), rest.end());
        write(id, r, from);
        ASSERT_TRUE(a.commit(id).ok());
      } else {
        ASSERT_TRUE(a.free_sequence(id).ok());
        truth.erase(id);
      }
    } else if (op < 6) {  // append
      auto it = std::next(truth.begin(), rng() % truth.size());
      std::vector<int32_t> more(1 + rng() % (2 * bs));
      for (auto& t : more) t = (int32_t)(rng() % 50);
      AllocResult r = a.allocate_slots(it->first, more);
      if (r.ok()) {
        const int64_t from = (int64_t)it->second.size();
        it->second.insert(it->second.end(), more.begin(), more.end());
        write(it->first, r, from);
        ASSERT_TRUE(a.commit(it->first).ok());
      } else {
        ASSERT_NE(r.status, AllocStatus::kOk);
      }
    } else if (op < 7) {  // fork
      auto it = std::next(truth.begin(), rng() % truth.size());
      const SeqId id = next_id++;
      auto f = a.fork(it->first, id);
      if (f.ok()) {
        truth[id] = it->second;
        for (const CopyOp& c : *f)
          for (int i = 0; i < c.n_tokens; ++i)
            memory[(size_t)c.dst * bs + i] = memory[(size_t)c.src * bs + i];
      }
    } else {  // free
      auto it = std::next(truth.begin(), rng() % truth.size());
      ASSERT_TRUE(a.free_sequence(it->first).ok());
      truth.erase(it);
    }
    // Every live sequence reads its own tokens back.
    int64_t tokens = 0;
    for (const auto& [id, tk] : truth) {
      auto table = a.block_table(id);
      ASSERT_EQ(a.seq_len(id), (int64_t)tk.size());
      for (int64_t pos = 0; pos < (int64_t)tk.size(); ++pos)
        ASSERT_EQ(memory[(size_t)table[pos / bs] * bs + pos % bs], tk[pos])
            << "seed " << seed << " step " << step << " seq " << id << " pos " << pos;
      tokens += (int64_t)tk.size();
    }
    expect_stats_add_up(a);
    EXPECT_EQ(a.stats().used_tokens, tokens);
    EXPECT_EQ(a.stats().n_sequences, (int64_t)truth.size());
    if (paged) {
      const Status s = static_cast<PagedAllocator&>(a).check_invariants();
      ASSERT_TRUE(s.ok()) << s.to_string() << " seed " << seed << " step " << step;
    }
  }
  for (const auto& [id, tk] : truth) ASSERT_TRUE(a.free_sequence(id).ok());
  const KvStats s = a.stats();
  EXPECT_EQ(s.used_blocks, 0);  // no leak
  EXPECT_EQ(s.free_blocks, s.total_blocks);
  if (paged) {
    EXPECT_GT(s.reused_blocks, 0);
  }
}

TEST(KvManager, RandomizedPropertiesPaged) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    PagedAllocatorParams p;
    p.block_size = 4;
    p.n_blocks = 40;
    auto a = std::move(PagedAllocator::create(p).value());
    run_random_workload(*a, seed, true);
  }
}

TEST(KvManager, RandomizedPropertiesContiguous) {
  ContiguousAllocatorParams p;
  p.block_size = 4;
  p.n_blocks = 64;
  p.max_seq_len = 48;
  auto a = std::move(ContiguousAllocator::create(p).value());
  run_random_workload(*a, 5u, false);
}

TEST(KvManager, PagedAdmitsMoreThanContiguousOnShortSequences) {
  // 64 blocks of 16 tokens; the contiguous cache reserves 256 tokens per sequence.
  PagedAllocatorParams pp;
  pp.n_blocks = 64;
  pp.max_seq_len = 256;
  ContiguousAllocatorParams cp;
  cp.n_blocks = 64;
  cp.max_seq_len = 256;
  auto paged = std::move(PagedAllocator::create(pp).value());
  auto contig = std::move(ContiguousAllocator::create(cp).value());
  auto admit = [](KvAllocator& a) {
    int n = 0;
    std::vector<int32_t> prompt(40, 1);
    for (SeqId id = 0;; ++id) {
      EXPECT_TRUE(a.add_sequence(id).ok());
      if (!a.allocate_slots(id, prompt).ok()) return n;
      ++n;
    }
  };
  EXPECT_EQ(admit(*contig), 4);
  EXPECT_EQ(admit(*paged), 21);  // 3 blocks each: floor(64 / 3)
}

}  // namespace
}  // namespace frugal::kv
