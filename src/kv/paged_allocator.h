// The paged KV manager: per-sequence block tables over a shared BlockPool, prefix caching with
// chained block hashes, fork with copy-on-write. See kv_allocator.h for the protocol.
#pragma once

#include <memory>
#include <unordered_map>

#include "kv/block_pool.h"
#include "kv/kv_allocator.h"

namespace frugal::kv {

struct PagedAllocatorParams {
  int32_t block_size = 16;   // tokens per block: a power of two
  int32_t n_blocks = 0;      // blocks in the pool (>= 1)
  int64_t max_seq_len = 0;   // longest sequence accepted; 0: n_blocks * block_size
  bool prefix_caching = true;
};

class PagedAllocator final : public KvAllocator {
 public:
  // Errors: bad block size or block count (InvalidArgument).
  static Result<std::unique_ptr<PagedAllocator>> create(const PagedAllocatorParams& p);

  int32_t block_size() const override { return pool_.block_size(); }
  int32_t n_blocks() const override { return pool_.n_blocks(); }
  Status add_sequence(SeqId seq, uint64_t salt = 0) override;
  Result<int64_t> match_prefix(SeqId seq, std::span<const int32_t> prompt) override;
  AllocResult allocate_slots(SeqId seq, std::span<const int32_t> new_tokens) override;
  Status commit(SeqId seq) override;
  Result<std::vector<CopyOp>> fork(SeqId parent, SeqId child) override;
  Status free_sequence(SeqId seq) override;
  std::span<const int32_t> block_table(SeqId seq) const override;
  int64_t seq_len(SeqId seq) const override;
  KvStats stats() const override;

  const BlockPool& pool() const { return pool_; }
  // Pool invariants plus: every block's ref count equals the number of tables holding it.
  Status check_invariants() const;

 private:
  struct Seq {
    uint64_t salt = 0;
    std::vector<int32_t> table;
    std::vector<int32_t> tokens;     // ids of positions [0, len)
    int64_t n_computed = 0;          // positions whose K/V are written (commit)
    std::vector<BlockHash> hashes;   // chained hashes of the first hashes.size() full blocks
  };
  explicit PagedAllocator(BlockPool pool, const PagedAllocatorParams& p)
      : pool_(std::move(pool)), params_(p) {}

  BlockPool pool_;
  PagedAllocatorParams params_;
  std::unordered_map<SeqId, Seq> seqs_;
  int64_t reused_ = 0, missed_ = 0;
};

}  // namespace frugal::kv
