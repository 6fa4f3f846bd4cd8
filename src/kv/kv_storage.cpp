#include "kv/kv_storage.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <string>

namespace frugal::kv {

namespace {
Status check(const KvStorageParams& p) {
  if (p.n_layers < 1 || p.n_kv_heads < 1 || p.head_dim < 1)
    return InvalidArgument("KV storage: layers, KV heads and head_dim must be positive");
  if (p.block_size < 1 || (p.block_size & (p.block_size - 1)) != 0)
    return InvalidArgument("KV block size must be a positive power of two, got " +
                           std::to_string(p.block_size));
  if (cpu::kv_row_bytes(p.dtype, p.head_dim) < 0)
    return InvalidArgument(std::string("KV dtype ") + cpu::kv_dtype_name(p.dtype) +
                           " does not support head_dim " + std::to_string(p.head_dim));
  return Status::Ok();
}
}  // namespace

int64_t KvStorage::bytes_per_block(const KvStorageParams& p) {
  if (!check(p).ok()) return -1;
  return 2LL * p.n_layers * p.block_size * p.n_kv_heads * cpu::kv_row_bytes(p.dtype, p.head_dim);
}

Result<int32_t> KvStorage::blocks_for_budget(const KvStorageParams& p, int64_t budget_bytes) {
  FRUGAL_RETURN_IF_ERROR(check(p));
  const int64_t per = bytes_per_block(p);
  const int64_t n = budget_bytes / per;
  if (n < 1)
    return InvalidArgument("KV budget of " + std::to_string(budget_bytes) +
                           " bytes is smaller than one block (" + std::to_string(per) + " bytes)");
  return (int32_t)std::min<int64_t>(n, INT32_MAX);
}

Result<KvStorage> KvStorage::create(const KvStorageParams& p) {
  FRUGAL_RETURN_IF_ERROR(check(p));
  if (p.n_blocks < 1) return InvalidArgument("KV storage needs at least one block");
  KvStorage s;
  s.p_ = p;
  s.row_bytes_ = cpu::kv_row_bytes(p.dtype, p.head_dim);
  s.plane_ = (size_t)p.n_blocks * p.block_size * p.n_kv_heads * s.row_bytes_;
  const size_t total = s.plane_ * 2 * p.n_layers;
  try {
    s.data_.assign(total, 0);
    s.scales_.assign((size_t)p.n_layers * 2 * p.n_kv_heads, 1.0f);
    s.scales_set_.assign((size_t)p.n_layers, 0);
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("cannot allocate the KV cache (" + std::to_string(total) + " bytes)");
  }
  return s;
}

Status KvStorage::set_fp8_scales(int layer, std::span<const float> ks, std::span<const float> vs) {
  if (layer < 0 || layer >= p_.n_layers) return InvalidArgument("KV storage: bad layer");
  if ((int)ks.size() != p_.n_kv_heads || (int)vs.size() != p_.n_kv_heads)
    return InvalidArgument("FP8 scales: need one per KV head");
  for (float x : ks) if (!(x > 0) || !std::isfinite(x)) return InvalidArgument("FP8 scales must be > 0");
  for (float x : vs) if (!(x > 0) || !std::isfinite(x)) return InvalidArgument("FP8 scales must be > 0");
  float* sc = scales_.data() + (size_t)layer * 2 * p_.n_kv_heads;
  std::copy(ks.begin(), ks.end(), sc);
  std::copy(vs.begin(), vs.end(), sc + p_.n_kv_heads);
  scales_set_[(size_t)layer] = 1;
  return Status::Ok();
}

Status KvStorage::write(int layer, std::span<const int32_t> table, int64_t pos, int64_t n,
                        const float* k, const float* v) {
  if (layer < 0 || layer >= p_.n_layers) return InvalidArgument("KV write: bad layer");
  const int64_t bs = p_.block_size;
  if (pos < 0 || n < 0 || (pos + n + bs - 1) / bs > (int64_t)table.size())
    return InvalidArgument("KV write: positions past the block table");
  const int H = p_.n_kv_heads, D = p_.head_dim;
  float* sc = scales_.data() + (size_t)layer * 2 * H;
  if (p_.dtype == cpu::KvDType::kFp8 && !scales_set_[(size_t)layer] && n > 0) {
    for (int kvi = 0; kvi < 2; ++kvi)
      for (int h = 0; h < H; ++h) {
        const float* x = kvi ? v : k;
        float amax = 0.0f;
        for (int64_t t = 0; t < n; ++t)
          for (int d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[t * H * D + h * D + d]));
        sc[kvi * H + h] = amax > 0 ? amax * 4.0f / 448.0f : 1.0f;
      }
    scales_set_[(size_t)layer] = 1;
  }
  for (int64_t t = 0; t < n; ++t) {
    const int64_t p = pos + t;
    const int32_t b = table[(size_t)(p / bs)];
    if (b < 0 || b >= p_.n_blocks) return InvalidArgument("KV write: block id out of range");
    const size_t row0 = (((size_t)b * bs + p % bs) * H) * row_bytes_;
    for (int h = 0; h < H; ++h) {
      cpu::kv_quantize_row(p_.dtype, k + (t * H + h) * D, D, sc[h],
                           base(layer, 0) + row0 + h * row_bytes_);
      cpu::kv_quantize_row(p_.dtype, v + (t * H + h) * D, D, sc[H + h],
                           base(layer, 1) + row0 + h * row_bytes_);
    }
  }
  return Status::Ok();
}

void KvStorage::copy(const CopyOp& op) {
  const size_t block = (size_t)p_.block_size * p_.n_kv_heads * row_bytes_;
  const size_t n = (size_t)op.n_tokens * p_.n_kv_heads * row_bytes_;
  for (int l = 0; l < p_.n_layers; ++l)
    for (int kvi = 0; kvi < 2; ++kvi)
      std::copy_n(base(l, kvi) + op.src * block, n, base(l, kvi) + op.dst * block);
}

cpu::PagedKvView KvStorage::view(int layer, std::span<const int32_t> table) const {
  cpu::PagedKvView v;
  v.k = base(layer, 0);
  v.v = base(layer, 1);
  v.dtype = p_.dtype;
  v.block_size = p_.block_size;
  v.n_kv_heads = p_.n_kv_heads;
  v.head_dim = p_.head_dim;
  if (p_.dtype == cpu::KvDType::kFp8) {
    v.k_scale = scales_.data() + (size_t)layer * 2 * p_.n_kv_heads;
    v.v_scale = v.k_scale + p_.n_kv_heads;
  }
  v.block_table = table;
  v.n_blocks = p_.n_blocks;
  return v;
}

}  // namespace frugal::kv
