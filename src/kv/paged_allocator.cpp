#include "kv/paged_allocator.h"

#include <algorithm>

namespace frugal::kv {

namespace {
std::string str(int64_t v) { return std::to_string(v); }
}  // namespace

Result<std::unique_ptr<PagedAllocator>> PagedAllocator::create(const PagedAllocatorParams& p) {
  FRUGAL_ASSIGN_OR_RETURN(BlockPool pool, BlockPool::create(p.n_blocks, p.block_size));
  if (p.max_seq_len < 0) return InvalidArgument("maximum sequence length must be >= 0");
  return std::unique_ptr<PagedAllocator>(new PagedAllocator(std::move(pool), p));
}

Status PagedAllocator::add_sequence(SeqId seq, uint64_t salt) {
  if (seqs_.count(seq)) return InvalidArgument("sequence " + str(seq) + " is already open");
  seqs_[seq].salt = salt;
  return Status::Ok();
}

Result<int64_t> PagedAllocator::match_prefix(SeqId seq, std::span<const int32_t> prompt) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return InvalidArgument("unknown sequence " + str(seq));
  Seq& s = it->second;
  if (!s.tokens.empty()) return InvalidArgument("match_prefix needs an empty sequence");
  if (!params_.prefix_caching || prompt.empty()) return int64_t{0};
  const int32_t bs = pool_.block_size();
  const int64_t n_query = ((int64_t)prompt.size() - 1) / bs;  // leave >= 1 token to compute
  BlockHash parent{};
  int64_t m = 0;
  for (; m < n_query; ++m) {
    const auto toks = prompt.subspan((size_t)(m * bs), (size_t)bs);
    const BlockHash h = hash_block(parent, toks, s.salt);
    const int32_t b = pool_.lookup(h);
    if (b < 0 || !pool_.matches(b, parent, toks, s.salt)) break;
    pool_.ref(b);
    s.table.push_back(b);
    s.hashes.push_back(h);
    parent = h;
  }
  s.tokens.assign(prompt.begin(), prompt.begin() + (size_t)(m * bs));
  s.n_computed = m * bs;
  reused_ += m;
  missed_ += n_query - m;
  return m * bs;
}

AllocResult PagedAllocator::allocate_slots(SeqId seq, std::span<const int32_t> new_tokens) {
  AllocResult r;
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) {
    r.status = AllocStatus::kNeverFits;
    r.reason = "unknown sequence " + str(seq);
    return r;
  }
  Seq& s = it->second;
  const int32_t bs = pool_.block_size();
  const int64_t len = (int64_t)s.tokens.size(), n = (int64_t)new_tokens.size();
  if (n == 0) return r;
  const int64_t total = len + n;
  const int64_t max_len = params_.max_seq_len > 0 ? params_.max_seq_len
                                                  : (int64_t)pool_.n_blocks() * bs;
  const int64_t blocks_total = (total + bs - 1) / bs;
  if (total > max_len || blocks_total > pool_.n_blocks()) {
    r.status = AllocStatus::kNeverFits;
    r.reason = "a sequence of " + str(total) + " tokens can never fit: the KV cache holds " +
               str(std::min<int64_t>(max_len, (int64_t)pool_.n_blocks() * bs)) +
               " tokens per sequence (" + str(pool_.n_blocks()) + " blocks of " + str(bs) + ")";
    return r;
  }
  const bool cow = (len % bs) != 0 && pool_.ref_count(s.table.back()) > 1;
  const int64_t need = blocks_total - (int64_t)s.table.size() + (cow ? 1 : 0);
  if (need > pool_.n_free()) {
    r.status = AllocStatus::kRetryLater;
    r.reason = "needs " + str(need) + " free KV blocks, " + str(pool_.n_free()) +
               " are free now: retry later";
    return r;
  }
  std::vector<int32_t> got;
  pool_.take((int32_t)need, got);
  size_t next = 0;
  if (cow) {
    const int32_t dst = got[next++];
    r.copies.push_back({s.table.back(), dst, (int32_t)(len % bs)});
    pool_.unref(s.table.back());
    s.table.back() = dst;
    r.new_blocks.push_back(dst);
  }
  for (; next < got.size(); ++next) {
    s.table.push_back(got[next]);
    r.new_blocks.push_back(got[next]);
  }
  s.tokens.insert(s.tokens.end(), new_tokens.begin(), new_tokens.end());
  return r;
}

Status PagedAllocator::commit(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return InvalidArgument("unknown sequence " + str(seq));
  Seq& s = it->second;
  s.n_computed = (int64_t)s.tokens.size();
  if (!params_.prefix_caching) return Status::Ok();
  const int32_t bs = pool_.block_size();
  for (size_t i = s.hashes.size(); (int64_t)(i + 1) * bs <= s.n_computed; ++i) {
    const BlockHash parent = i ? s.hashes[i - 1] : BlockHash{};
    const auto toks = std::span<const int32_t>(s.tokens).subspan(i * bs, (size_t)bs);
    const BlockHash h = hash_block(parent, toks, s.salt);
    s.hashes.push_back(h);
    if (!pool_.is_cached(s.table[i])) (void)pool_.cache(s.table[i], h, parent, toks, s.salt);
  }
  return Status::Ok();
}

Result<std::vector<CopyOp>> PagedAllocator::fork(SeqId parent, SeqId child) {
  auto it = seqs_.find(parent);
  if (it == seqs_.end()) return InvalidArgument("unknown sequence " + str(parent));
  if (seqs_.count(child)) return InvalidArgument("sequence " + str(child) + " is already open");
  Seq copy = it->second;
  for (int32_t b : copy.table) pool_.ref(b);
  seqs_.emplace(child, std::move(copy));
  return std::vector<CopyOp>{};
}

Status PagedAllocator::free_sequence(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return InvalidArgument("unknown sequence " + str(seq));
  // Last block first: the tail of the sequence becomes evictable before its head.
  const auto& t = it->second.table;
  for (auto b = t.rbegin(); b != t.rend(); ++b) pool_.unref(*b);
  seqs_.erase(it);
  return Status::Ok();
}

std::span<const int32_t> PagedAllocator::block_table(SeqId seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return {};
  return it->second.table;
}

int64_t PagedAllocator::seq_len(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? -1 : (int64_t)it->second.tokens.size();
}

KvStats PagedAllocator::stats() const {
  KvStats st;
  st.total_blocks = pool_.n_blocks();
  st.free_blocks = pool_.n_free();
  st.used_blocks = st.total_blocks - st.free_blocks;
  st.cached_blocks = pool_.n_cached();
  st.evictable_blocks = pool_.n_evictable();
  st.n_sequences = (int64_t)seqs_.size();
  for (const auto& [id, s] : seqs_) st.used_tokens += (int64_t)s.tokens.size();
  st.reused_blocks = reused_;
  st.missed_blocks = missed_;
  st.evicted_blocks = pool_.n_evicted();
  return st;
}

Status PagedAllocator::check_invariants() const {
  FRUGAL_RETURN_IF_ERROR(pool_.check_invariants());
  std::vector<int32_t> holders((size_t)pool_.n_blocks(), 0);
  const int32_t bs = pool_.block_size();
  for (const auto& [id, s] : seqs_) {
    const int64_t want = ((int64_t)s.tokens.size() + bs - 1) / bs;
    if ((int64_t)s.table.size() != want)
      return Internal("sequence " + str(id) + " has " + str((int64_t)s.table.size()) +
                      " blocks for " + str((int64_t)s.tokens.size()) + " tokens");
    for (int32_t b : s.table) {
      if (b < 0 || b >= pool_.n_blocks()) return Internal("block id out of range");
      ++holders[(size_t)b];
    }
  }
  for (int32_t b = 0; b < pool_.n_blocks(); ++b)
    if (holders[(size_t)b] != pool_.ref_count(b))
      return Internal("block " + str(b) + ": ref count " + str(pool_.ref_count(b)) + " but " +
                      str(holders[(size_t)b]) + " tables hold it");
  return Status::Ok();
}

}  // namespace frugal::kv
