#include "kv/block_pool.h"

#include <algorithm>
#include <new>

namespace frugal::kv {

Result<BlockPool> BlockPool::create(int32_t n_blocks, int32_t block_size) {
  if (block_size < 1 || (block_size & (block_size - 1)) != 0)
    return InvalidArgument("KV block size must be a positive power of two, got " +
                           std::to_string(block_size));
  if (n_blocks < 1)
    return InvalidArgument("the KV cache budget holds no block (need at least one block of " +
                           std::to_string(block_size) + " tokens)");
  BlockPool p;
  p.block_size_ = block_size;
  const size_t n = (size_t)n_blocks;
  try {
    p.ref_.assign(n, 0);
    p.prev_.assign(n, -1);
    p.next_.assign(n, -1);
    p.in_queue_.assign(n, 0);
    p.cached_.assign(n, 0);
    p.hash_.assign(n, {});
    p.parent_.assign(n, {});
    p.extra_.assign(n, 0);
    p.tokens_.assign(n * (size_t)block_size, 0);
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("cannot allocate block metadata for " + std::to_string(n_blocks) +
                             " blocks");
  }
  for (int32_t b = 0; b < n_blocks; ++b) p.push_back(b);
  return p;
}

void BlockPool::push_front(int32_t b) {
  prev_[b] = -1;
  next_[b] = head_;
  if (head_ >= 0) prev_[head_] = b; else tail_ = b;
  head_ = b;
  in_queue_[b] = 1;
  ++n_free_;
  if (cached_[b]) ++n_evictable_;
}

void BlockPool::push_back(int32_t b) {
  next_[b] = -1;
  prev_[b] = tail_;
  if (tail_ >= 0) next_[tail_] = b; else head_ = b;
  tail_ = b;
  in_queue_[b] = 1;
  ++n_free_;
  if (cached_[b]) ++n_evictable_;
}

void BlockPool::remove(int32_t b) {
  if (prev_[b] >= 0) next_[prev_[b]] = next_[b]; else head_ = next_[b];
  if (next_[b] >= 0) prev_[next_[b]] = prev_[b]; else tail_ = prev_[b];
  prev_[b] = next_[b] = -1;
  in_queue_[b] = 0;
  --n_free_;
  if (cached_[b]) --n_evictable_;
}

void BlockPool::evict(int32_t b) {
  cache_.erase(hash_[b]);
  cached_[b] = 0;
  ++n_evicted_;
}

bool BlockPool::take(int32_t n, std::vector<int32_t>& out) {
  if (n < 0 || n > n_free_) return false;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = head_;
    remove(b);
    if (cached_[b]) evict(b);
    ref_[b] = 1;
    out.push_back(b);
  }
  return true;
}

void BlockPool::ref(int32_t b) {
  if (ref_[b]++ == 0 && in_queue_[b]) remove(b);
}

void BlockPool::unref(int32_t b) {
  if (ref_[b] <= 0) return;  // never below zero (a double free is the manager's bug; see tests)
  if (--ref_[b] == 0) {
    if (cached_[b]) push_back(b); else push_front(b);
  }
}

int32_t BlockPool::lookup(const BlockHash& h) const {
  auto it = cache_.find(h);
  return it == cache_.end() ? -1 : it->second;
}

bool BlockPool::matches(int32_t b, const BlockHash& parent, std::span<const int32_t> tokens,
                        uint64_t extra) const {
  if (!cached_[b] || (int32_t)tokens.size() != block_size_) return false;
  return parent_[b] == parent && extra_[b] == extra &&
         std::equal(tokens.begin(), tokens.end(), tokens_.begin() + (size_t)b * block_size_);
}

bool BlockPool::cache(int32_t b, const BlockHash& h, const BlockHash& parent,
                      std::span<const int32_t> tokens, uint64_t extra) {
  if (cached_[b] || ref_[b] <= 0 || (int32_t)tokens.size() != block_size_) return false;
  if (!cache_.emplace(h, b).second) return false;
  cached_[b] = 1;
  hash_[b] = h;
  parent_[b] = parent;
  extra_[b] = extra;
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + (size_t)b * block_size_);
  return true;
}

std::vector<int32_t> BlockPool::free_queue() const {
  std::vector<int32_t> q;
  for (int32_t b = head_; b >= 0; b = next_[b]) q.push_back(b);
  return q;
}

Status BlockPool::check_invariants() const {
  int32_t count = 0, evictable = 0, prev = -1;
  for (int32_t b = head_; b >= 0; b = next_[b]) {
    if (++count > n_blocks()) return Internal("free queue has a cycle");
    if (prev_[b] != prev) return Internal("free queue back link broken at block " + std::to_string(b));
    if (!in_queue_[b] || ref_[b] != 0) return Internal("block " + std::to_string(b) + " in queue with ref != 0");
    if (cached_[b]) ++evictable;
    prev = b;
  }
  if (prev != tail_) return Internal("free queue tail is wrong");
  if (count != n_free_ || evictable != n_evictable_) return Internal("free/evictable counts drift");
  int32_t zero_refs = 0, flagged = 0;
  for (int32_t b = 0; b < n_blocks(); ++b) {
    if (ref_[b] < 0) return Internal("negative ref count");
    if (ref_[b] == 0) ++zero_refs;
    if ((ref_[b] == 0) != (bool)in_queue_[b]) return Internal("block " + std::to_string(b) + ": ref 0 iff free is broken");
    if (cached_[b]) {
      ++flagged;
      auto it = cache_.find(hash_[b]);
      if (it == cache_.end() || it->second != b) return Internal("cached flag without map entry");
    }
  }
  if (zero_refs != n_free_ || flagged != (int32_t)cache_.size()) return Internal("cache map drift");
  return Status::Ok();
}

}  // namespace frugal::kv
