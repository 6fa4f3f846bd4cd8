#include "kv/block_hash.h"

// Header-only use of the installed xxhash (no link dependency). GCC 12 reports false
// "maybe uninitialized" warnings inside its SIMD paths: silenced for this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace frugal::kv {

BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> tokens, uint64_t extra_key) {
  // Little-endian byte image: parent.lo, parent.hi, extra_key, then the token ids.
  XXH3_state_t st;
  XXH3_128bits_reset(&st);
  const uint64_t head[3] = {parent.lo, parent.hi, extra_key};
  XXH3_128bits_update(&st, head, sizeof(head));
  XXH3_128bits_update(&st, tokens.data(), tokens.size_bytes());
  const XXH128_hash_t h = XXH3_128bits_digest(&st);
  return BlockHash{h.low64, h.high64};
}

}  // namespace frugal::kv
