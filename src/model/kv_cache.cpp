#include "model/kv_cache.h"

#include <algorithm>
#include <cctype>
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

Result<KvCache> KvCache::create(const ModelConfig& c, int64_t n_ctx, const KvCacheOptions& o) {
  if (n_ctx <= 0) return InvalidArgument("context size must be positive");
  if (n_ctx > c.max_seq_len)
    return OutOfRange("context size " + std::to_string(n_ctx) + " exceeds the model's maximum " +
                      std::to_string(c.max_seq_len));
  if (o.budget_bytes < 0) return InvalidArgument("KV budget must be >= 0");
  KvCache kv;
  kv.n_ctx_ = n_ctx;
  kv.kv_dim_ = c.kv_dim();
  if (o.kind == KvCacheKind::kContiguous) {
    if (o.budget_bytes > 0)
      return InvalidArgument("a KV budget applies to the paged cache only (contiguous reserves "
                             "n_ctx positions)");
    if (o.dtype && *o.dtype != cpu::KvDType::kF32)
      return InvalidArgument(std::string("the contiguous KV cache stores f32 only (asked for ") +
                             cpu::kv_dtype_name(*o.dtype) + "): use --kv-cache paged");
    const size_t n = (size_t)c.n_layers * 2 * n_ctx * kv.kv_dim_;
    try {
      kv.data_.assign(n, 0.0f);
    } catch (const std::bad_alloc&) {
      return ResourceExhausted("cannot allocate the KV cache (" + std::to_string(n * 4) + " bytes)");
    }
    return kv;
  }
  kv.dtype_ = o.dtype.value_or(cpu::KvDType::kF32);
  kv::KvStorageParams sp;
  sp.n_layers = (int)c.n_layers;
  sp.n_kv_heads = (int)c.n_kv_heads;
  sp.head_dim = (int)c.head_dim();
  sp.block_size = o.block_size;
  sp.dtype = kv.dtype_;
  if (o.block_size < 1 || (o.block_size & (o.block_size - 1)) != 0)
    return InvalidArgument("KV block size must be a positive power of two, got " +
                           std::to_string(o.block_size));
  const int64_t need = (n_ctx + o.block_size - 1) / o.block_size;
  if (o.budget_bytes > 0) {
    FRUGAL_ASSIGN_OR_RETURN(int32_t nb, kv::KvStorage::blocks_for_budget(sp, o.budget_bytes));
    sp.n_blocks = (int32_t)std::min<int64_t>(nb, need);  // one sequence never uses more
  } else {
    sp.n_blocks = (int32_t)need;
  }
  FRUGAL_ASSIGN_OR_RETURN(kv::KvStorage st, kv::KvStorage::create(sp));
  kv::PagedAllocatorParams ap;
  ap.block_size = o.block_size;
  ap.n_blocks = sp.n_blocks;
  ap.max_seq_len = n_ctx;
  ap.prefix_caching = false;  // one sequence: reuse across requests needs the scheduler
  FRUGAL_ASSIGN_OR_RETURN(kv.alloc_, kv::PagedAllocator::create(ap));
  FRUGAL_RETURN_IF_ERROR(kv.alloc_->add_sequence(0));
  kv.storage_ = std::make_unique<kv::KvStorage>(std::move(st));
  kv.n_ctx_ = std::min<int64_t>(n_ctx, (int64_t)sp.n_blocks * o.block_size);
  return kv;
}

size_t KvCache::bytes() const {
  return storage_ ? (size_t)storage_->bytes() : data_.size() * sizeof(float);
}

int64_t KvCache::length() const { return alloc_ ? alloc_->seq_len(0) : 0; }

std::span<const int32_t> KvCache::block_table() const {
  return alloc_ ? alloc_->block_table(0) : std::span<const int32_t>{};
}

Status KvCache::prepare(std::span<const int32_t> tokens, int64_t pos) {
  if (!alloc_) return InvalidArgument("prepare: not a paged KV cache");
  if (pos == 0 && length() > 0) {  // restart the sequence
    FRUGAL_RETURN_IF_ERROR(alloc_->free_sequence(0));
    FRUGAL_RETURN_IF_ERROR(alloc_->add_sequence(0));
  }
  if (pos != length())
    return InvalidArgument("paged KV cache: position " + std::to_string(pos) +
                           " must continue the sequence (length " + std::to_string(length()) +
                           ") or restart it at 0");
  kv::AllocResult r = alloc_->allocate_slots(0, tokens);
  if (!r.ok()) return ResourceExhausted("KV cache: " + r.reason);
  for (const kv::CopyOp& op : r.copies) storage_->copy(op);  // none for a single sequence
  return alloc_->commit(0);
}

}  // namespace frugal
