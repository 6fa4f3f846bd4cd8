#include "kv/contiguous_allocator.h"

#include <algorithm>

namespace frugal::kv {

namespace {
std::string str(int64_t v) { return std::to_string(v); }
}  // namespace

Result<std::unique_ptr<ContiguousAllocator>> ContiguousAllocator::create(
    const ContiguousAllocatorParams& p) {
  if (p.block_size < 1 || (p.block_size & (p.block_size - 1)) != 0)
    return InvalidArgument("KV block size must be a positive power of two, got " +
                           str(p.block_size));
  if (p.max_seq_len <= 0) return InvalidArgument("the contiguous KV cache needs max_seq_len > 0");
  auto a = std::unique_ptr<ContiguousAllocator>(new ContiguousAllocator());
  a->block_size_ = p.block_size;
  a->n_blocks_ = p.n_blocks;
  a->max_seq_len_ = p.max_seq_len;
  a->slot_blocks_ = (int32_t)((p.max_seq_len + p.block_size - 1) / p.block_size);
  const int32_t n_slots = p.n_blocks / a->slot_blocks_;
  if (n_slots < 1)
    return InvalidArgument("the KV cache budget (" + str(p.n_blocks) + " blocks of " +
                           str(p.block_size) + ") is smaller than one reservation of " +
                           str(p.max_seq_len) + " tokens");
  a->slot_used_.assign((size_t)n_slots, 0);
  return a;
}

Status ContiguousAllocator::add_sequence(SeqId seq, uint64_t) {
  if (seqs_.count(seq)) return InvalidArgument("sequence " + str(seq) + " is already open");
  seqs_[seq];
  return Status::Ok();
}

Result<int64_t> ContiguousAllocator::match_prefix(SeqId seq, std::span<const int32_t>) {
  if (!seqs_.count(seq)) return InvalidArgument("unknown sequence " + str(seq));
  return int64_t{0};
}

int32_t ContiguousAllocator::grab_slot() {
  for (size_t i = 0; i < slot_used_.size(); ++i)
    if (!slot_used_[i]) {
      slot_used_[i] = 1;
      return (int32_t)i;
    }
  return -1;
}

AllocResult ContiguousAllocator::allocate_slots(SeqId seq, std::span<const int32_t> new_tokens) {
  AllocResult r;
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) {
    r.status = AllocStatus::kNeverFits;
    r.reason = "unknown sequence " + str(seq);
    return r;
  }
  Seq& s = it->second;
  const int64_t n = (int64_t)new_tokens.size();
  if (n == 0) return r;
  if (s.len + n > max_seq_len_) {
    r.status = AllocStatus::kNeverFits;
    r.reason = "a sequence of " + str(s.len + n) + " tokens can never fit: each sequence holds " +
               str(max_seq_len_) + " tokens";
    return r;
  }
  if (s.slot < 0) {
    s.slot = grab_slot();
    if (s.slot < 0) {
      r.status = AllocStatus::kRetryLater;
      r.reason = "all " + str(n_slots()) + " contiguous reservations are in use: retry later";
      return r;
    }
  }
  s.len += n;
  while ((int64_t)s.table.size() * block_size_ < s.len) {
    const int32_t b = s.slot * slot_blocks_ + (int32_t)s.table.size();
    s.table.push_back(b);
    r.new_blocks.push_back(b);
  }
  return r;
}

Status ContiguousAllocator::commit(SeqId seq) {
  if (!seqs_.count(seq)) return InvalidArgument("unknown sequence " + str(seq));
  return Status::Ok();
}

Result<std::vector<CopyOp>> ContiguousAllocator::fork(SeqId parent, SeqId child) {
  auto it = seqs_.find(parent);
  if (it == seqs_.end()) return InvalidArgument("unknown sequence " + str(parent));
  if (seqs_.count(child)) return InvalidArgument("sequence " + str(child) + " is already open");
  Seq c;
  std::vector<CopyOp> copies;
  if (it->second.slot >= 0) {
    c.slot = grab_slot();
    if (c.slot < 0)
      return ResourceExhausted("fork: all contiguous reservations are in use: retry later");
    c.len = it->second.len;
    for (size_t i = 0; i < it->second.table.size(); ++i) {
      const int32_t dst = c.slot * slot_blocks_ + (int32_t)i;
      const int64_t rows = std::min<int64_t>(block_size_, c.len - (int64_t)i * block_size_);
      copies.push_back({it->second.table[i], dst, (int32_t)rows});
      c.table.push_back(dst);
    }
  }
  seqs_.emplace(child, std::move(c));
  return copies;
}

Status ContiguousAllocator::free_sequence(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return InvalidArgument("unknown sequence " + str(seq));
  if (it->second.slot >= 0) slot_used_[(size_t)it->second.slot] = 0;
  seqs_.erase(it);
  return Status::Ok();
}

std::span<const int32_t> ContiguousAllocator::block_table(SeqId seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return {};
  return it->second.table;
}

int64_t ContiguousAllocator::seq_len(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? -1 : it->second.len;
}

KvStats ContiguousAllocator::stats() const {
  KvStats st;
  st.total_blocks = n_blocks_;
  for (uint8_t u : slot_used_) st.used_blocks += u ? slot_blocks_ : 0;
  st.free_blocks = st.total_blocks - st.used_blocks;
  st.n_sequences = (int64_t)seqs_.size();
  for (const auto& [id, s] : seqs_) st.used_tokens += s.len;
  return st;
}

}  // namespace frugal::kv
