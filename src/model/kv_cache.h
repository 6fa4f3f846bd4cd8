// The engine's KV cache for one sequence, in one of two kinds:
//   paged (default): kv::KvStorage blocks handed out by kv::PagedAllocator, any KV dtype
//     (backend/cpu/kv_quant.h), read by the paged decode / flash prefill kernels
//     (backend/cpu/attention_kv.h). Memory is bounded by the budget, not by n_ctx. The blocks
//     live in a KvPool: a private one (KvCache::create), or one shared by many requests
//     (KvPool::open) where a new request reuses the cached K/V of a prompt prefix another
//     request computed (KvCache::admit) and waits when the pool is full.
//   contiguous: for every layer, n_ctx float32 rows of K and of V, each row holding
//     n_kv_heads*head_dim floats, reserved up front (the baseline the paged cache replaces;
//     read by attention_decode / attention_prefill in backend/cpu/ops.h).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "backend/cpu/kv_quant.h"
#include "base/status.h"
#include "kv/kv_storage.h"
#include "kv/paged_allocator.h"
#include "model/config.h"

namespace frugal {

enum class KvCacheKind { kPaged, kContiguous };
const char* kv_cache_kind_name(KvCacheKind k);
Result<KvCacheKind> parse_kv_cache_kind(std::string_view s);            // "paged" | "contiguous"
Result<cpu::KvDType> parse_kv_cache_dtype(std::string_view s);         // kv_quant.h names
// "auto" -> 0; otherwise bytes, with an optional K/M/G/KiB/MiB/GiB suffix (powers of 1024).
Result<int64_t> parse_kv_budget(std::string_view s);

struct KvCacheOptions {
  KvCacheKind kind = KvCacheKind::kPaged;
  // Paged: any KV dtype, default F32 (F16 moves SmolLM2 logits by >1e-3). Contiguous: F32 only.
  std::optional<cpu::KvDType> dtype;
  int32_t block_size = 16;  // paged: tokens per block, a power of two
  int64_t budget_bytes = 0; // paged: KV bytes; 0 = auto (room for n_ctx tokens)
};

class KvPool;
class KvCache;

// Private: builds a KvPool (kv_cache.cpp).
struct KvPoolAccess {
  static std::shared_ptr<KvPool> make(std::unique_ptr<kv::KvStorage> storage,
                                      std::unique_ptr<kv::PagedAllocator> alloc,
                                      int64_t max_seq_len, int64_t kv_dim, cpu::KvDType dtype);
};

// How a sequence that does not fit in the pool right now is admitted.
enum class Admission {
  kWait,    // block until other sequences free enough blocks (or the timeout passes)
  kNoWait,  // refuse at once with Unavailable ("retry later")
};

class KvCache {
 public:
  // A cache of its own for one sequence (no prefix caching). Errors: n_ctx <= 0 or past the
  // model's context (OutOfRange); bad block size, dtype that does not suit head_dim, a budget
  // smaller than one block, a dtype with the contiguous kind (InvalidArgument); allocation
  // failure (ResourceExhausted).
  static Result<KvCache> create(const ModelConfig& c, int64_t n_ctx,
                                const KvCacheOptions& o = {});

  KvCache() = default;
  KvCache(KvCache&&) noexcept;
  KvCache& operator=(KvCache&&) noexcept;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  ~KvCache();  // a sequence of a shared pool is freed; its full blocks stay in the prefix cache

  // Positions the cache can hold: n_ctx, or less when a paged budget is smaller.
  int64_t n_ctx() const { return n_ctx_; }
  size_t bytes() const;
  bool paged() const { return pool_ != nullptr; }
  cpu::KvDType dtype() const { return dtype_; }

  // Contiguous kind only: float rows (stride row_floats()).
  int64_t row_floats() const { return kv_dim_; }
  float* k(int layer, int64_t pos) { return data_.data() + offset(layer, 0, pos); }
  float* v(int layer, int64_t pos) { return data_.data() + offset(layer, 1, pos); }

  // Paged kind only. Admits a new request's prompt in one step: attaches the longest cached
  // prefix (whole blocks, at least one token left to compute) and allocates the rest, waiting
  // or refusing as the cache's Admission says when the pool is full now. Returns the number of
  // leading prompt tokens whose K/V are already cached: the caller runs only the rest,
  // forward(prompt[n:], pos = n). The sequence must be empty (new, or restarted by prepare at 0).
  // Errors: a prompt longer than the pool or the sequence maximum (ResourceExhausted: it can
  // never fit); full now with kNoWait, or still full at the timeout (Unavailable).
  Result<int64_t> admit(std::span<const int32_t> prompt);

  // Paged kind only. Makes room for `tokens` at positions [pos, pos + n): pos == 0 restarts
  // the sequence, pos == the positions written so far continues it (positions admit() already
  // allocated are used as they are); other positions are InvalidArgument. Growing past what
  // the pool holds now is ResourceExhausted with the allocator's reason (no waiting here: a
  // sequence that holds blocks never waits for others, so two growing sequences cannot
  // deadlock). The K/V written by the previous call become visible to the prefix cache.
  Status prepare(std::span<const int32_t> tokens, int64_t pos);
  int64_t length() const;  // positions allocated
  kv::KvStorage& storage();
  std::span<const int32_t> block_table() const;

 private:
  friend class KvPool;
  size_t offset(int layer, int kv, int64_t pos) const {
    return ((size_t)(layer * 2 + kv) * n_ctx_ + pos) * kv_dim_;
  }
  void release();
  int64_t n_ctx_ = 0;
  int64_t kv_dim_ = 0;
  cpu::KvDType dtype_ = cpu::KvDType::kF32;
  std::vector<float> data_;        // contiguous
  std::shared_ptr<KvPool> pool_;   // paged
  int64_t seq_ = -1;               // paged: this sequence's id in the pool
  uint64_t salt_ = 0;
  int64_t written_ = 0;            // paged: positions whose K/V the caller has been given room for
  Admission admission_ = Admission::kWait;
  int64_t wait_ms_ = 0;            // kWait: 0 = no timeout
};

// A paged KV pool shared by the sequences of many requests: one kv::KvStorage and one
// kv::PagedAllocator (prefix caching on by default), all KV memory allocated up front. Requests
// may run on different threads: the allocator is behind a mutex, and a finished sequence wakes
// the requests waiting for admission. Each sequence's K/V slots are written only by its owner.
struct KvPoolOptions {
  cpu::KvDType dtype = cpu::KvDType::kF32;
  int32_t block_size = 16;     // tokens per block, a power of two
  int64_t budget_bytes = 0;    // KV bytes (> 0), rounded down to whole blocks
  int64_t max_seq_len = 0;     // longest sequence; 0: the model's context
  bool prefix_caching = true;
};

// Bytes of the paged KV blocks that hold `tokens` positions (whole blocks) for model c: the
// budget to give KvPoolOptions for a given capacity. Errors: bad block size or dtype.
Result<int64_t> kv_pool_bytes_for_tokens(const ModelConfig& c, cpu::KvDType dtype,
                                         int32_t block_size, int64_t tokens);

class KvPool {
 public:
  // Errors as KvCache::create (budget must be positive here).
  static Result<std::shared_ptr<KvPool>> create(const ModelConfig& c, const KvPoolOptions& o);

  // An empty sequence of this pool. salt separates tenants in the prefix cache; wait_ms bounds
  // the admission wait (0: none).
  Result<KvCache> open(uint64_t salt = 0, Admission a = Admission::kWait, int64_t wait_ms = 0);

  kv::KvStats stats() const;
  size_t bytes() const;
  int32_t block_size() const;
  int64_t max_seq_len() const { return max_seq_len_; }
  cpu::KvDType dtype() const { return dtype_; }

 private:
  friend class KvCache;
  friend struct KvPoolAccess;
  KvPool() = default;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::unique_ptr<kv::KvStorage> storage_;
  std::unique_ptr<kv::PagedAllocator> alloc_;
  std::weak_ptr<KvPool> self_;
  int64_t next_seq_ = 0;
  int64_t max_seq_len_ = 0;
  int64_t kv_dim_ = 0;
  cpu::KvDType dtype_ = cpu::KvDType::kF32;
};

}  // namespace frugal
