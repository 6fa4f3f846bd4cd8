#include "kv/kv_storage.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "base/half.h"
#include "base/huge_pages.h"

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
  if (p.block_size < cpu::kv_min_block_size(p.dtype))
    return InvalidArgument(std::string("KV dtype ") + cpu::kv_dtype_name(p.dtype) +
                           " needs a block size of at least " +
                           std::to_string(cpu::kv_min_block_size(p.dtype)));
  return Status::Ok();
}
}  // namespace

int64_t KvStorage::bytes_per_block(const KvStorageParams& p) {
  if (!check(p).ok()) return -1;
  const int64_t rows = cpu::kv_row_bytes(p.dtype, p.head_dim, false) +
                       cpu::kv_row_bytes(p.dtype, p.head_dim, true);
  return (int64_t)p.n_layers * p.n_kv_heads *
         (p.block_size * rows + cpu::kv_k_params_bytes(p.dtype, p.head_dim));
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
  s.k_row_ = cpu::kv_row_bytes(p.dtype, p.head_dim, false);
  s.v_row_ = cpu::kv_row_bytes(p.dtype, p.head_dim, true);
  s.k_params_ = cpu::kv_k_params_bytes(p.dtype, p.head_dim);
  const size_t slots = (size_t)p.n_blocks * p.block_size * p.n_kv_heads;
  s.plane_off_[1] = slots * s.k_row_;
  s.plane_off_[2] = s.plane_off_[1] + slots * s.v_row_;
  s.layer_bytes_ = s.plane_off_[2] + (size_t)p.n_blocks * p.n_kv_heads * s.k_params_;
  const size_t total = s.layer_bytes_ * p.n_layers;
  try {
    s.buf_ = allocate_stream_buffer(total, /*huge=*/true);
    if (!s.buf_) throw std::bad_alloc();
    s.data_bytes_ = total;
    std::memset(s.buf_.get(), 0, total);
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
  const bool kivi = p_.dtype == cpu::KvDType::kInt4Kivi;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t p = pos + t;
    const int32_t b = table[(size_t)(p / bs)];
    if (b < 0 || b >= p_.n_blocks) return InvalidArgument("KV write: block id out of range");
    const size_t slot = ((size_t)b * bs + p % bs) * H;
    for (int h = 0; h < H; ++h) {
      if (!kivi)
        cpu::kv_quantize_row(p_.dtype, k + (t * H + h) * D, D, sc[h],
                             base(layer, 0) + (slot + h) * k_row_);
      cpu::kv_quantize_row(p_.dtype, v + (t * H + h) * D, D, sc[H + h],
                           base(layer, 1) + (slot + h) * v_row_);
    }
  }
  return kivi ? write_kivi_keys(layer, table, pos, n, k) : Status::Ok();
}

Status KvStorage::write_kivi_keys(int layer, std::span<const int32_t> table, int64_t pos,
                                  int64_t n, const float* k) {
  const int64_t bs = p_.block_size;
  const int H = p_.n_kv_heads, D = p_.head_dim;
  const size_t stage_layer = (size_t)bs * H * D;  // f16 values per layer of a staging buffer
  std::vector<float> full;
  auto quantize_block = [&](int32_t b, const float* x /* [bs][H*D] */) {
    for (int h = 0; h < H; ++h)
      cpu::kv_quantize_k_channels(x + h * D, (int64_t)H * D, (int)bs, D,
                                  base(layer, 0) + ((size_t)b * bs * H + h) * k_row_,
                                  (int64_t)H * k_row_,
                                  base(layer, 2) + ((size_t)b * H + h) * k_params_);
  };
  for (int64_t t = 0; t < n;) {
    const int64_t p = pos + t, slot = p % bs, run = std::min(bs - slot, n - t);
    const int32_t b = table[(size_t)(p / bs)];
    if (slot == 0 && run == bs) {  // a whole block in this write: straight from the floats
      quantize_block(b, k + t * H * D);
      if (layer == p_.n_layers - 1) stage_.erase(b);
    } else {
      auto it = stage_.find(b);
      if (layer == 0 && slot == 0) {
        try {
          it = stage_.insert_or_assign(b, std::vector<uint16_t>(stage_layer * p_.n_layers)).first;
        } catch (const std::bad_alloc&) {
          return ResourceExhausted("cannot allocate the int4 key staging block");
        }
      }
      if (it == stage_.end())
        return InvalidArgument("KV write: int4 keys of a partial block were not staged (write "
                               "positions in order, layer 0 first)");
      uint16_t* st = it->second.data() + layer * stage_layer;
      for (int64_t j = 0; j < run; ++j)
        for (int e = 0; e < H * D; ++e)
          st[(slot + j) * H * D + e] = f32_to_fp16(k[(t + j) * H * D + e]);
      if (slot + run == bs) {  // the block is full: quantize it per channel
        full.resize(stage_layer);
        for (size_t e = 0; e < stage_layer; ++e) full[e] = fp16_to_f32(st[e]);
        quantize_block(b, full.data());
        if (layer == p_.n_layers - 1) stage_.erase(it);
      }
    }
    t += run;
  }
  return Status::Ok();
}

int64_t KvStorage::bytes() const {
  int64_t n = (int64_t)data_bytes_;
  for (const auto& [b, v] : stage_) n += (int64_t)(v.size() * sizeof(uint16_t));
  return n;
}

void KvStorage::copy(const CopyOp& op) {
  const size_t per_slot = (size_t)p_.n_kv_heads, bs = (size_t)p_.block_size;
  const size_t n = (size_t)op.n_tokens * per_slot;
  const size_t kp = (size_t)p_.n_kv_heads * k_params_;
  for (int l = 0; l < p_.n_layers; ++l) {
    std::copy_n(base(l, 0) + op.src * bs * per_slot * k_row_, n * k_row_,
                base(l, 0) + op.dst * bs * per_slot * k_row_);
    std::copy_n(base(l, 1) + op.src * bs * per_slot * v_row_, n * v_row_,
                base(l, 1) + op.dst * bs * per_slot * v_row_);
    std::copy_n(base(l, 2) + op.src * kp, kp, base(l, 2) + op.dst * kp);
  }
  auto it = stage_.find(op.src);
  if (it != stage_.end()) {
    std::vector<uint16_t> copy = it->second;
    stage_.insert_or_assign(op.dst, std::move(copy));
  }
}

cpu::PagedKvView KvStorage::view(int layer, std::span<const int32_t> table,
                                 int64_t n_tokens) const {
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
  if (p_.dtype == cpu::KvDType::kInt4Kivi) {
    v.k_params = base(layer, 2);
    const int64_t bs = p_.block_size;
    if (n_tokens > 0 && n_tokens % bs != 0 && n_tokens / bs < (int64_t)table.size()) {
      auto it = stage_.find(table[(size_t)(n_tokens / bs)]);
      if (it != stage_.end()) {
        v.k_tail = it->second.data() + (size_t)layer * bs * p_.n_kv_heads * p_.head_dim;
        v.tail_start = n_tokens / bs * bs;
      }
    }
  }
  return v;
}

}  // namespace frugal::kv
