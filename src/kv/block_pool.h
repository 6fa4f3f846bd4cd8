// The block pool: KV memory is divided into n_blocks blocks of block_size token slots; this class
// holds only their metadata (indices, reference counts, prefix-cache keys), never the memory
// itself (see kv/kv_storage.h for the one allocation that holds the K/V bytes).
//
// Free queue: the blocks with reference count 0, in eviction order (head = next to hand out).
// It is an intrusive doubly linked list over block ids, so a cached block that gets a prefix hit
// leaves the middle of the queue in O(1). Blank blocks (no cached content) join at the head, so
// they are used before any cached block is evicted; cached blocks join at the tail, so the least
// recently freed cached block is evicted first (LRU). The manager frees a sequence's blocks
// last-to-first, which puts its tail blocks ahead of its head blocks in eviction order.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "kv/block_hash.h"

namespace frugal::kv {

class BlockPool {
 public:
  // Errors: n_blocks < 1, block_size < 1 or not a power of two (InvalidArgument).
  static Result<BlockPool> create(int32_t n_blocks, int32_t block_size);

  int32_t n_blocks() const { return (int32_t)ref_.size(); }
  int32_t block_size() const { return block_size_; }
  int32_t n_free() const { return n_free_; }            // ref 0 (blank or evictable)
  int32_t n_cached() const { return (int32_t)cache_.size(); }  // holding a prefix-cache key
  int32_t n_evictable() const { return n_evictable_; }  // cached and ref 0
  int64_t n_evicted() const { return n_evicted_; }      // cache entries dropped so far

  // Takes n blocks from the head of the free queue, evicting any cached content; each gets
  // ref 1. Returns false and takes nothing if fewer than n are free.
  bool take(int32_t n, std::vector<int32_t>& out);
  // ++ref; a block at ref 0 leaves the free queue (a prefix hit on an evictable block).
  void ref(int32_t b);
  // --ref; at 0 the block joins the free queue (cached: tail, blank: head).
  void unref(int32_t b);
  int32_t ref_count(int32_t b) const { return ref_[(size_t)b]; }

  // Prefix cache. lookup: the block registered under h, or -1.
  int32_t lookup(const BlockHash& h) const;
  // True when block b's stored key equals (parent, tokens, extra): confirms a hash hit.
  bool matches(int32_t b, const BlockHash& parent, std::span<const int32_t> tokens,
               uint64_t extra) const;
  // Registers full block b (ref > 0) under h with its key. Returns false (and changes nothing)
  // if b is already cached or another block already holds h.
  bool cache(int32_t b, const BlockHash& h, const BlockHash& parent,
             std::span<const int32_t> tokens, uint64_t extra);
  bool is_cached(int32_t b) const { return cached_[(size_t)b]; }

  // Free queue from head to tail (tests and debugging).
  std::vector<int32_t> free_queue() const;
  // Checks the internal invariants (queue links, counts, map <-> flags); Internal on failure.
  Status check_invariants() const;

 private:
  void push_front(int32_t b);
  void push_back(int32_t b);
  void remove(int32_t b);
  void evict(int32_t b);

  int32_t block_size_ = 0;
  std::vector<int32_t> ref_;
  std::vector<int32_t> prev_, next_;  // free-queue links; -1 = none
  std::vector<uint8_t> in_queue_, cached_;
  int32_t head_ = -1, tail_ = -1;
  int32_t n_free_ = 0, n_evictable_ = 0;
  int64_t n_evicted_ = 0;
  // Cached key of each block: hash, parent hash, extra key and tokens ([n_blocks, block_size]).
  std::vector<BlockHash> hash_, parent_;
  std::vector<uint64_t> extra_;
  std::vector<int32_t> tokens_;
  std::unordered_map<BlockHash, int32_t, BlockHashHasher> cache_;
};

}  // namespace frugal::kv
