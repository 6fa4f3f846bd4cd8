// The contiguous baseline: every sequence reserves max_seq_len tokens (one "slot" of
// ceil(max_seq_len / block_size) consecutive blocks) on its first allocation, as a cache without
// paging does. Same interface and block-table view as the paged manager, so the two can be
// compared on one workload and share the attention kernels. No prefix caching.
#pragma once

#include <memory>
#include <unordered_map>

#include "kv/kv_allocator.h"

namespace frugal::kv {

struct ContiguousAllocatorParams {
  int32_t block_size = 16;  // a power of two
  int32_t n_blocks = 0;     // total blocks; n_blocks / slot_blocks sequences fit
  int64_t max_seq_len = 0;  // tokens reserved per sequence (> 0)
};

class ContiguousAllocator final : public KvAllocator {
 public:
  // Errors: bad block size, max_seq_len <= 0, or fewer blocks than one reservation.
  static Result<std::unique_ptr<ContiguousAllocator>> create(const ContiguousAllocatorParams& p);

  int32_t block_size() const override { return block_size_; }
  int32_t n_blocks() const override { return n_blocks_; }
  int32_t n_slots() const { return (int32_t)slot_used_.size(); }
  Status add_sequence(SeqId seq, uint64_t salt = 0) override;
  Result<int64_t> match_prefix(SeqId seq, std::span<const int32_t> prompt) override;
  AllocResult allocate_slots(SeqId seq, std::span<const int32_t> new_tokens) override;
  Status commit(SeqId seq) override;
  Result<std::vector<CopyOp>> fork(SeqId parent, SeqId child) override;
  Status free_sequence(SeqId seq) override;
  std::span<const int32_t> block_table(SeqId seq) const override;
  int64_t seq_len(SeqId seq) const override;
  KvStats stats() const override;

 private:
  struct Seq {
    int32_t slot = -1;             // -1 until the first allocation
    int64_t len = 0;
    std::vector<int32_t> table;    // slot*slot_blocks + i for the blocks covering [0, len)
  };
  int32_t grab_slot();

  int32_t block_size_ = 0, n_blocks_ = 0, slot_blocks_ = 0;
  int64_t max_seq_len_ = 0;
  std::vector<uint8_t> slot_used_;
  std::unordered_map<SeqId, Seq> seqs_;
};

}  // namespace frugal::kv
