#include "model/kv_cache.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <new>
#include <string>

namespace frugal {

const char* kv_cache_kind_name(KvCacheKind k) {
  return k == KvCacheKind::kPaged ? "paged" : "contiguous";
}

Result<KvCacheKind> parse_kv_cache_kind(std::string_view s) {
  if (s == "paged") return KvCacheKind::kPaged;
  if (s == "contiguous") return KvCacheKind::kContiguous;
  return InvalidArgument("unknown KV cache kind '" + std::string(s) +
                         "' (expected paged or contiguous)");
}

Result<cpu::KvDType> parse_kv_cache_dtype(std::string_view s) {
  cpu::KvDType t;
  if (!cpu::parse_kv_dtype(s, &t))
    return InvalidArgument("unknown KV dtype '" + std::string(s) +
                           "' (expected f32, f16, bf16, fp8, int8, int4 or int4tok)");
  return t;
}

Result<int64_t> parse_kv_budget(std::string_view s) {
  if (s == "auto") return int64_t{0};
  size_t i = 0;
  while (i < s.size() && std::isdigit((unsigned char)s[i])) ++i;
  if (i == 0 || i > 18) return InvalidArgument("KV budget '" + std::string(s) + "' is not a size");
  int64_t v = std::stoll(std::string(s.substr(0, i)));
  std::string suf(s.substr(i));
  for (char& ch : suf) ch = (char)std::toupper((unsigned char)ch);
  int shift = 0;
  if (suf.empty() || suf == "B") shift = 0;
  else if (suf == "K" || suf == "KB" || suf == "KIB") shift = 10;
  else if (suf == "M" || suf == "MB" || suf == "MIB") shift = 20;
  else if (suf == "G" || suf == "GB" || suf == "GIB") shift = 30;
  else return InvalidArgument("KV budget '" + std::string(s) + "': unknown unit '" + suf + "'");
  if (v > (INT64_MAX >> shift)) return InvalidArgument("KV budget is too large");
  v <<= shift;
  if (v <= 0) return InvalidArgument("KV budget must be positive (or auto)");
  return v;
}

namespace {

Result<kv::KvStorageParams> storage_params(const ModelConfig& c, cpu::KvDType dtype,
                                           int32_t block_size) {
  if (block_size < 1 || (block_size & (block_size - 1)) != 0)
    return InvalidArgument("KV block size must be a positive power of two, got " +
                           std::to_string(block_size));
  kv::KvStorageParams sp;
  sp.n_layers = (int)c.n_layers;
  sp.n_kv_heads = (int)c.n_kv_heads;
  sp.head_dim = (int)c.head_dim();
  sp.block_size = block_size;
  sp.dtype = dtype;
  return sp;
}

// Builds a pool of exactly n_blocks blocks.
Result<std::shared_ptr<KvPool>> make_pool(const ModelConfig& c, kv::KvStorageParams sp,
                                          int32_t n_blocks, int64_t max_seq_len, bool prefix) {
  sp.n_blocks = n_blocks;
  FRUGAL_ASSIGN_OR_RETURN(kv::KvStorage st, kv::KvStorage::create(sp));
  kv::PagedAllocatorParams ap;
  ap.block_size = sp.block_size;
  ap.n_blocks = n_blocks;
  ap.max_seq_len = max_seq_len;
  ap.prefix_caching = prefix;
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<kv::PagedAllocator> alloc, kv::PagedAllocator::create(ap));
  return KvPoolAccess::make(std::make_unique<kv::KvStorage>(std::move(st)), std::move(alloc),
                            max_seq_len, c.kv_dim(), sp.dtype);
}

std::string blocks_str(int64_t n) { return std::to_string(n) + (n == 1 ? " block" : " blocks"); }

}  // namespace

std::shared_ptr<KvPool> KvPoolAccess::make(std::unique_ptr<kv::KvStorage> storage,
                                           std::unique_ptr<kv::PagedAllocator> alloc,
                                           int64_t max_seq_len, int64_t kv_dim, cpu::KvDType dtype) {
  std::shared_ptr<KvPool> p(new KvPool());
  p->storage_ = std::move(storage);
  p->alloc_ = std::move(alloc);
  p->self_ = p;
  p->max_seq_len_ = max_seq_len;
  p->kv_dim_ = kv_dim;
  p->dtype_ = dtype;
  return p;
}

Result<int64_t> kv_pool_bytes_for_tokens(const ModelConfig& c, cpu::KvDType dtype,
                                         int32_t block_size, int64_t tokens) {
  FRUGAL_ASSIGN_OR_RETURN(kv::KvStorageParams sp, storage_params(c, dtype, block_size));
  const int64_t per_block = kv::KvStorage::bytes_per_block(sp);
  if (per_block <= 0) return kv::KvStorage::blocks_for_budget(sp, 0).status();  // the reason
  return (tokens + block_size - 1) / block_size * per_block;
}

Result<std::shared_ptr<KvPool>> KvPool::create(const ModelConfig& c, const KvPoolOptions& o) {
  if (o.budget_bytes <= 0) return InvalidArgument("a shared KV pool needs a positive budget");
  if (o.max_seq_len < 0) return InvalidArgument("max_seq_len must be >= 0");
  const int64_t max_len = o.max_seq_len > 0 ? std::min<int64_t>(o.max_seq_len, c.max_seq_len)
                                            : c.max_seq_len;
  FRUGAL_ASSIGN_OR_RETURN(kv::KvStorageParams sp, storage_params(c, o.dtype, o.block_size));
  FRUGAL_ASSIGN_OR_RETURN(int32_t nb, kv::KvStorage::blocks_for_budget(sp, o.budget_bytes));
  return make_pool(c, sp, nb, max_len, o.prefix_caching);
}

Result<KvCache> KvPool::open(uint64_t salt, Admission a, int64_t wait_ms) {
  if (wait_ms < 0) return InvalidArgument("admission timeout must be >= 0");
  KvCache kv;
  {
    std::lock_guard<std::mutex> lock(mu_);
    kv.seq_ = next_seq_++;
    FRUGAL_RETURN_IF_ERROR(alloc_->add_sequence(kv.seq_, salt));
  }
  kv.pool_ = self_.lock();
  kv.salt_ = salt;
  kv.admission_ = a;
  kv.wait_ms_ = wait_ms;
  kv.kv_dim_ = kv_dim_;
  kv.dtype_ = dtype_;
  kv.n_ctx_ = std::min<int64_t>(max_seq_len_, (int64_t)alloc_->n_blocks() * alloc_->block_size());
  return kv;
}

kv::KvStats KvPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return alloc_->stats();
}
size_t KvPool::bytes() const { return (size_t)storage_->bytes(); }
int32_t KvPool::block_size() const { return alloc_->block_size(); }

Result<KvCache> KvCache::create(const ModelConfig& c, int64_t n_ctx, const KvCacheOptions& o) {
  if (n_ctx <= 0) return InvalidArgument("context size must be positive");
  if (n_ctx > c.max_seq_len)
    return OutOfRange("context size " + std::to_string(n_ctx) + " exceeds the model's maximum " +
                      std::to_string(c.max_seq_len));
  if (o.budget_bytes < 0) return InvalidArgument("KV budget must be >= 0");
  if (o.kind == KvCacheKind::kContiguous) {
    if (o.budget_bytes > 0)
      return InvalidArgument("a KV budget applies to the paged cache only (contiguous reserves "
                             "n_ctx positions)");
    if (o.dtype && *o.dtype != cpu::KvDType::kF32)
      return InvalidArgument(std::string("the contiguous KV cache stores f32 only (asked for ") +
                             cpu::kv_dtype_name(*o.dtype) + "): use --kv-cache paged");
    KvCache kv;
    kv.n_ctx_ = n_ctx;
    kv.kv_dim_ = c.kv_dim();
    const size_t n = (size_t)c.n_layers * 2 * n_ctx * kv.kv_dim_;
    try {
      kv.data_.assign(n, 0.0f);
    } catch (const std::bad_alloc&) {
      return ResourceExhausted("cannot allocate the KV cache (" + std::to_string(n * 4) + " bytes)");
    }
    return kv;
  }
  FRUGAL_ASSIGN_OR_RETURN(kv::KvStorageParams sp,
                          storage_params(c, o.dtype.value_or(cpu::KvDType::kF32), o.block_size));
  const int64_t need = (n_ctx + o.block_size - 1) / o.block_size;
  int32_t nb = (int32_t)need;
  if (o.budget_bytes > 0) {
    FRUGAL_ASSIGN_OR_RETURN(int32_t fit, kv::KvStorage::blocks_for_budget(sp, o.budget_bytes));
    nb = (int32_t)std::min<int64_t>(fit, need);  // one sequence never uses more
  }
  // One sequence: nothing to share, so no prefix cache.
  FRUGAL_ASSIGN_OR_RETURN(std::shared_ptr<KvPool> pool, make_pool(c, sp, nb, n_ctx, false));
  FRUGAL_ASSIGN_OR_RETURN(KvCache kv, pool->open());
  kv.n_ctx_ = std::min<int64_t>(n_ctx, (int64_t)nb * o.block_size);
  return kv;
}

KvCache::KvCache(KvCache&& o) noexcept { *this = std::move(o); }

KvCache& KvCache::operator=(KvCache&& o) noexcept {
  if (this == &o) return *this;
  release();
  n_ctx_ = o.n_ctx_;
  kv_dim_ = o.kv_dim_;
  dtype_ = o.dtype_;
  data_ = std::move(o.data_);
  pool_ = std::move(o.pool_);
  seq_ = o.seq_;
  salt_ = o.salt_;
  written_ = o.written_;
  admission_ = o.admission_;
  wait_ms_ = o.wait_ms_;
  o.pool_.reset();
  o.seq_ = -1;
  return *this;
}

KvCache::~KvCache() { release(); }

void KvCache::release() {
  if (!pool_) return;
  {
    std::lock_guard<std::mutex> lock(pool_->mu_);
    // The K/V of every allocated position has been written by now: publish the full blocks,
    // then free the sequence (its cached blocks become evictable, last block first).
    if (written_ > 0 && written_ == pool_->alloc_->seq_len(seq_)) (void)pool_->alloc_->commit(seq_);
    (void)pool_->alloc_->free_sequence(seq_);
  }
  pool_->freed_.notify_all();
  pool_.reset();
  seq_ = -1;
}

size_t KvCache::bytes() const { return pool_ ? pool_->bytes() : data_.size() * sizeof(float); }

int64_t KvCache::length() const { return pool_ ? pool_->alloc_->seq_len(seq_) : 0; }

kv::KvStorage& KvCache::storage() { return *pool_->storage_; }

std::span<const int32_t> KvCache::block_table() const {
  return pool_ ? pool_->alloc_->block_table(seq_) : std::span<const int32_t>{};
}

Result<int64_t> KvCache::admit(std::span<const int32_t> prompt) {
  if (!pool_) return InvalidArgument("admit: not a paged KV cache");
  if (prompt.empty()) return InvalidArgument("admit: empty prompt");
  KvPool& p = *pool_;
  std::unique_lock<std::mutex> lock(p.mu_);
  if (p.alloc_->seq_len(seq_) != 0) return InvalidArgument("admit: the sequence is not empty");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms_);
  for (;;) {
    FRUGAL_ASSIGN_OR_RETURN(int64_t n_cached, p.alloc_->match_prefix(seq_, prompt));
    kv::AllocResult r = p.alloc_->allocate_slots(seq_, prompt.subspan((size_t)n_cached));
    if (r.ok()) {
      for (const kv::CopyOp& op : r.copies) p.storage_->copy(op);
      written_ = n_cached;
      return n_cached;
    }
    // Give back the attached prefix before waiting: a waiting request holds no blocks.
    (void)p.alloc_->free_sequence(seq_);
    FRUGAL_RETURN_IF_ERROR(p.alloc_->add_sequence(seq_, salt_));
    if (r.status == kv::AllocStatus::kNeverFits)
      return ResourceExhausted("KV cache: the request can never fit: " + r.reason);
    const kv::KvStats s = p.alloc_->stats();
    const std::string why = "KV cache full now (" + std::to_string(prompt.size()) +
                            " prompt tokens; " + blocks_str(s.free_blocks) + " of " +
                            blocks_str(s.total_blocks) + " free, held by " +
                            std::to_string(s.n_sequences - 1) + " other sequences)";
    if (admission_ == Admission::kNoWait) return Unavailable(why + ": retry later");
    if (wait_ms_ == 0) {
      p.freed_.wait(lock);
    } else if (p.freed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return Unavailable(why + " after waiting " + std::to_string(wait_ms_) + " ms: retry later");
    }
  }
}

Status KvCache::prepare(std::span<const int32_t> tokens, int64_t pos) {
  if (!pool_) return InvalidArgument("prepare: not a paged KV cache");
  KvPool& p = *pool_;
  std::lock_guard<std::mutex> lock(p.mu_);
  kv::PagedAllocator& a = *p.alloc_;
  // The previous call's K/V are written now: their full blocks may enter the prefix cache.
  if (written_ > 0 && written_ == a.seq_len(seq_)) FRUGAL_RETURN_IF_ERROR(a.commit(seq_));
  if (pos == 0 && a.seq_len(seq_) > 0) {  // restart the sequence
    FRUGAL_RETURN_IF_ERROR(a.free_sequence(seq_));
    FRUGAL_RETURN_IF_ERROR(a.add_sequence(seq_, salt_));
    written_ = 0;
    p.freed_.notify_all();
  }
  if (pos != written_)
    return InvalidArgument("paged KV cache: position " + std::to_string(pos) +
                           " must continue the sequence (length " + std::to_string(written_) +
                           ") or restart it at 0");
  const int64_t n = (int64_t)tokens.size();
  const int64_t have = a.seq_len(seq_);
  if (pos + n <= have) {  // admitted already
    written_ = pos + n;
    return Status::Ok();
  }
  if (have > pos) tokens = tokens.subspan((size_t)(have - pos));
  kv::AllocResult r = a.allocate_slots(seq_, tokens);
  if (!r.ok()) return ResourceExhausted("KV cache: " + r.reason);
  for (const kv::CopyOp& op : r.copies) p.storage_->copy(op);
  written_ = pos + n;
  return Status::Ok();
}

}  // namespace frugal
