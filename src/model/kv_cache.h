// The simple contiguous KV cache: for every layer, n_ctx rows of K and of V, each row holding
// n_kv_heads*head_dim floats. Reserved up front for the whole context. (The paged cache of the
// KV issue replaces this behind the same accessors.)
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "model/config.h"

namespace frugal {

class KvCache {
 public:
  // Fails with ResourceExhausted if the allocation fails or n_ctx exceeds the model's context.
  static Result<KvCache> create(const ModelConfig& c, int64_t n_ctx);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t row_floats() const { return kv_dim_; }  // floats per position (stride)
  size_t bytes() const { return data_.size() * sizeof(float); }

  float* k(int layer, int64_t pos) { return data_.data() + offset(layer, 0, pos); }
  float* v(int layer, int64_t pos) { return data_.data() + offset(layer, 1, pos); }

 private:
  size_t offset(int layer, int kv, int64_t pos) const {
    return ((size_t)(layer * 2 + kv) * n_ctx_ + pos) * kv_dim_;
  }
  int64_t n_ctx_ = 0;
  int64_t kv_dim_ = 0;
  std::vector<float> data_;
};

}  // namespace frugal
