// Prefix-cache block hashes: a 128-bit xxHash3 chained over full blocks.
//   hash(block i) = XXH3_128(hash(block i-1) bytes, token ids of block i, extra key)
// The first block's parent is the all-zero hash. The extra key carries a cache salt, so two
// tenants with the same tokens never share blocks. A 128-bit chain keeps accidental collisions
// out of reach; a hit is still confirmed by comparing the stored key (see BlockPool::matches).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace frugal::kv {

struct BlockHash {
  uint64_t lo = 0, hi = 0;
  bool operator==(const BlockHash&) const = default;
};

struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const { return (size_t)(h.lo ^ (h.hi * 0x9e3779b97f4a7c15ull)); }
};

BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> tokens, uint64_t extra_key);

}  // namespace frugal::kv
