// The KV allocator interface shared by the paged manager (kv/paged_allocator.h) and the
// contiguous baseline (kv/contiguous_allocator.h), so both run the same workload.
//
// Life of a sequence:
//   add_sequence(id, salt)            -> empty sequence
//   match_prefix(id, prompt)          -> n tokens already cached (paged only; skip their prefill)
//   allocate_slots(id, new_tokens)    -> slots for the tokens, or "does not fit" (a value)
//   ... write K/V of the new tokens into the slots (copy-on-write copies first) ...
//   commit(id)                        -> the written full blocks enter the prefix cache
//   fork(id, child) / free_sequence(id)
// Position p of a sequence lives in block table[p / block_size], slot p % block_size.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace frugal::kv {

using SeqId = int64_t;

// Copy the first n_tokens slots of block src into block dst (all layers, K and V).
struct CopyOp {
  int32_t src = -1, dst = -1;
  int32_t n_tokens = 0;
};

enum class AllocStatus {
  kOk,
  kRetryLater,  // not enough free blocks now; may fit once other sequences finish
  kNeverFits,   // longer than the whole cache (or the per-sequence maximum): refuse
};

struct [[nodiscard]] AllocResult {
  AllocStatus status = AllocStatus::kOk;
  std::string reason;               // set when status != kOk
  std::vector<int32_t> new_blocks;  // blocks appended to the table by this call
  std::vector<CopyOp> copies;       // to perform before writing (copy-on-write)
  bool ok() const { return status == AllocStatus::kOk; }
};

// Block accounting. Invariants: used + free == total; evictable <= cached; evictable <= free.
struct KvStats {
  int64_t total_blocks = 0;
  int64_t used_blocks = 0;       // ref count > 0 (contiguous: every block of a reserved slot)
  int64_t free_blocks = 0;       // ref count 0, blank or evictable
  int64_t cached_blocks = 0;     // holding a prefix-cache entry (in use or not)
  int64_t evictable_blocks = 0;  // cached with ref count 0: reusable on a hit, evicted on demand
  int64_t n_sequences = 0;
  int64_t used_tokens = 0;       // sum of sequence lengths (allocated tokens)
  // Prefix cache counters over the allocator's lifetime (full blocks of matched prompts).
  int64_t reused_blocks = 0;
  int64_t missed_blocks = 0;
  int64_t evicted_blocks = 0;
  double hit_rate() const {
    const int64_t q = reused_blocks + missed_blocks;
    return q ? (double)reused_blocks / (double)q : 0.0;
  }
};

class KvAllocator {
 public:
  virtual ~KvAllocator() = default;

  virtual int32_t block_size() const = 0;
  virtual int32_t n_blocks() const = 0;

  // Opens an empty sequence; salt separates tenants in the prefix cache.
  // Errors: id already open (InvalidArgument).
  virtual Status add_sequence(SeqId seq, uint64_t salt = 0) = 0;
  // Attaches the longest cached prefix of `prompt` (whole blocks, always leaving at least one
  // token to compute) to the empty sequence `seq`; returns the number of tokens reused.
  virtual Result<int64_t> match_prefix(SeqId seq, std::span<const int32_t> prompt) = 0;
  // Makes room for new_tokens at positions [len, len + n) and records their ids.
  // Unknown seq: kNeverFits with the reason.
  virtual AllocResult allocate_slots(SeqId seq, std::span<const int32_t> new_tokens) = 0;
  // Declares the K/V of every allocated token written (full blocks become cacheable).
  virtual Status commit(SeqId seq) = 0;
  // child gets parent's tokens. Paged: shares all blocks (copy-on-write of the partial last
  // block on append), no copies. Contiguous: a fresh reservation plus the copies to perform.
  virtual Result<std::vector<CopyOp>> fork(SeqId parent, SeqId child) = 0;
  virtual Status free_sequence(SeqId seq) = 0;

  [[nodiscard]] virtual std::span<const int32_t> block_table(SeqId seq) const = 0;
  [[nodiscard]] virtual int64_t seq_len(SeqId seq) const = 0;  // -1 if unknown
  [[nodiscard]] virtual KvStats stats() const = 0;
};

}  // namespace frugal::kv
