// Prefix caching in the paged KV manager: hits after an identical prefix, misses after one
// changed token, salts separating tenants, eviction order (blank first, then LRU with a finished
// sequence's tail blocks first), hit rate = reused / (reused + missed).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "kv/paged_allocator.h"

namespace frugal::kv {
namespace {

std::unique_ptr<PagedAllocator> make(int32_t n_blocks, int32_t bs = 16) {
  PagedAllocatorParams p;
  p.block_size = bs;
  p.n_blocks = n_blocks;
  return std::move(PagedAllocator::create(p).value());
}

std::vector<int32_t> iota_tokens(int n, int32_t start = 100) {
  std::vector<int32_t> t((size_t)n);
  std::iota(t.begin(), t.end(), start);
  return t;
}

// Runs a whole prompt through: match, allocate the rest, commit. Returns the matched tokens.
int64_t run_prompt(PagedAllocator& a, SeqId id, const std::vector<int32_t>& prompt,
                   uint64_t salt = 0) {
  EXPECT_TRUE(a.add_sequence(id, salt).ok());
  auto m = a.match_prefix(id, prompt);
  EXPECT_TRUE(m.ok());
  std::vector<int32_t> rest(prompt.begin() + *m, prompt.end());
  EXPECT_TRUE(a.allocate_slots(id, rest).ok());
  EXPECT_TRUE(a.commit(id).ok());
  return *m;
}

TEST(KvPrefixCache, HitAfterIdenticalPrefix) {
  auto a = make(32);
  const auto prompt = iota_tokens(40);  // two full blocks + 8 tokens
  EXPECT_EQ(run_prompt(*a, 1, prompt), 0);
  EXPECT_EQ(a->stats().cached_blocks, 2);  // the partial third block is never cached
  // While sequence 1 is alive its blocks are shared.
  EXPECT_EQ(run_prompt(*a, 2, prompt), 32);
  EXPECT_EQ(a->block_table(2)[0], a->block_table(1)[0]);
  EXPECT_EQ(a->pool().ref_count(a->block_table(1)[0]), 2);
  ASSERT_TRUE(a->free_sequence(1).ok());
  ASSERT_TRUE(a->free_sequence(2).ok());
  EXPECT_EQ(a->stats().evictable_blocks, 2);
  // After both finished, the blocks stay cached.
  EXPECT_EQ(run_prompt(*a, 3, prompt), 32);
  const KvStats s = a->stats();
  EXPECT_EQ(s.reused_blocks, 4);
  EXPECT_EQ(s.missed_blocks, 2);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 4.0 / 6.0);
  ASSERT_TRUE(a->check_invariants().ok());
}

TEST(KvPrefixCache, LeavesAtLeastOneTokenToCompute) {
  auto a = make(32);
  const auto prompt = iota_tokens(32);  // exactly two blocks
  run_prompt(*a, 1, prompt);
  EXPECT_EQ(run_prompt(*a, 2, prompt), 16);  // the last block is recomputed to get logits
}

TEST(KvPrefixCache, MissAfterOneChangedToken) {
  auto a = make(32);
  const auto prompt = iota_tokens(50);
  run_prompt(*a, 1, prompt);
  auto changed = prompt;
  changed[20] = 7;  // inside block 1: block 0 still hits, blocks 1 and 2 miss
  EXPECT_EQ(run_prompt(*a, 2, changed), 16);
  changed = prompt;
  changed[0] = 7;  // the chain breaks at the first block
  EXPECT_EQ(run_prompt(*a, 3, changed), 0);
  changed = prompt;
  changed[47] = 7;  // block 2 differs; blocks 0 and 1 hit
  EXPECT_EQ(run_prompt(*a, 4, changed), 32);
  ASSERT_TRUE(a->check_invariants().ok());
}

TEST(KvPrefixCache, SaltSeparatesTenants) {
  auto a = make(32);
  const auto prompt = iota_tokens(40);
  run_prompt(*a, 1, prompt, /*salt=*/11);
  EXPECT_EQ(run_prompt(*a, 2, prompt, /*salt=*/22), 0);
  EXPECT_EQ(run_prompt(*a, 3, prompt, /*salt=*/0), 0);
  EXPECT_EQ(run_prompt(*a, 4, prompt, /*salt=*/11), 32);
}

TEST(KvPrefixCache, SameBlockTokensUnderDifferentParentsDoNotMatch) {
  auto a = make(32);
  // Block 1 has identical tokens in both prompts, block 0 differs: block 1 must not hit.
  auto p1 = iota_tokens(40), p2 = iota_tokens(40);
  p2[3] = 1;
  run_prompt(*a, 1, p1);
  EXPECT_EQ(run_prompt(*a, 2, p2), 0);
}

TEST(KvPrefixCache, EvictionOrderTailBlocksFirstThenLeastRecentlyUsed) {
  auto a = make(8, 4);  // 8 blocks of 4 tokens
  const auto pa = iota_tokens(13, 100);  // 3 full blocks + 1
  const auto pb = iota_tokens(13, 500);
  run_prompt(*a, 1, pa);
  ASSERT_TRUE(a->free_sequence(1).ok());  // A finishes first (older)
  run_prompt(*a, 2, pb);
  ASSERT_TRUE(a->free_sequence(2).ok());
  EXPECT_EQ(a->stats().evictable_blocks, 6);
  EXPECT_EQ(a->stats().free_blocks, 8);
  // Taking 3 blocks: 2 blank blocks, then A's tail block (block 2) is evicted first.
  ASSERT_TRUE(a->add_sequence(3).ok());
  ASSERT_TRUE(a->allocate_slots(3, iota_tokens(12, 900)).ok());
  EXPECT_EQ(a->stats().evicted_blocks, 1);
  ASSERT_TRUE(a->free_sequence(3).ok());  // uncommitted: its blocks return blank
  // A still hits its first two blocks; B all three.
  EXPECT_EQ(run_prompt(*a, 4, pa), 8);
  EXPECT_EQ(run_prompt(*a, 5, pb), 12);
  ASSERT_TRUE(a->check_invariants().ok());
}

TEST(KvPrefixCache, RecentlyReusedBlocksOutliveOlderOnes) {
  auto a = make(6, 4);
  const auto pa = iota_tokens(9, 100), pb = iota_tokens(9, 500);  // 2 full blocks + 1 each
  run_prompt(*a, 1, pa);
  ASSERT_TRUE(a->free_sequence(1).ok());
  run_prompt(*a, 2, pb);
  ASSERT_TRUE(a->free_sequence(2).ok());
  run_prompt(*a, 3, pa);  // touches A again: A becomes most recently used
  ASSERT_TRUE(a->free_sequence(3).ok());
  // Need 6 blocks: everything is evicted in the order B tail, B head, ... check B dies first.
  ASSERT_TRUE(a->add_sequence(4).ok());
  ASSERT_TRUE(a->allocate_slots(4, iota_tokens(12, 900)).ok());  // 3 blocks: 2 blank + 1 of B
  ASSERT_TRUE(a->free_sequence(4).ok());
  EXPECT_EQ(run_prompt(*a, 5, pa), 8);
  ASSERT_TRUE(a->free_sequence(5).ok());
  EXPECT_EQ(run_prompt(*a, 6, pb), 4);  // B lost its tail block, kept its head
}

TEST(KvPrefixCache, DisabledCachingNeverMatches) {
  PagedAllocatorParams p;
  p.n_blocks = 16;
  p.prefix_caching = false;
  auto a = std::move(PagedAllocator::create(p).value());
  const auto prompt = iota_tokens(40);
  run_prompt(*a, 1, prompt);
  EXPECT_EQ(run_prompt(*a, 2, prompt), 0);
  EXPECT_EQ(a->stats().cached_blocks, 0);
}

}  // namespace
}  // namespace frugal::kv
