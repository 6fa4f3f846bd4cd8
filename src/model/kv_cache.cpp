#include "model/kv_cache.h"

#include <new>

namespace frugal {

Result<KvCache> KvCache::create(const ModelConfig& c, int64_t n_ctx) {
  if (n_ctx <= 0) return InvalidArgument("context size must be positive");
  if (n_ctx > c.max_seq_len)
    return OutOfRange("context size " + std::to_string(n_ctx) + " exceeds the model's maximum " +
                      std::to_string(c.max_seq_len));
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

}  // namespace frugal
