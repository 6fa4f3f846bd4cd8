#include "quant/pack.h"

#include <fmt/format.h>

#include "base/half.h"

namespace frugal::quant {

namespace {

Status check_common(const QuantizedMatrix& q) {
  if (q.group == kPerTensor) return Unsupported("packed checkpoints need per-channel or group-wise scales");
  if ((int64_t)q.codes.size() != q.rows * q.cols || (int64_t)q.scales.size() != q.rows * q.n_groups ||
      (int64_t)q.zeros.size() != q.rows * q.n_groups)
    return InvalidArgument("quantized matrix buffers do not match its shape");
  for (float s : q.scales)
    if (fp16_to_f32(f32_to_fp16(s)) != s) return InvalidArgument("scales are not fp16 values");
  return Status::Ok();
}

QuantizedMatrix empty_matrix(int bits, int64_t in, int64_t out, int64_t group, int64_t n_groups) {
  QuantizedMatrix q;
  q.rows = out; q.cols = in; q.bits = bits; q.group = group; q.n_groups = n_groups;
  q.codes.assign((size_t)(out * in), 0);
  q.scales.assign((size_t)(out * n_groups), 1.0f);
  q.zeros.assign((size_t)(out * n_groups), 0.0f);
  return q;
}

}  // namespace

Result<PackedGptq> pack_autogptq(const QuantizedMatrix& q) {
  FRUGAL_RETURN_IF_ERROR(check_common(q));
  if (q.bits != 2 && q.bits != 4 && q.bits != 8)
    return Unsupported(fmt::format("AutoGPTQ packing of {}-bit weights is not supported (2, 4, 8)", q.bits));
  const int k = 32 / q.bits;
  const uint32_t mask = (1u << q.bits) - 1;
  if (q.cols % k != 0 || q.rows % k != 0)
    return InvalidArgument(fmt::format("AutoGPTQ packing needs in and out multiples of {}", k));
  PackedGptq p;
  p.bits = q.bits; p.in = q.cols; p.out = q.rows; p.group = q.group > 0 ? q.group : 0; p.n_groups = q.n_groups;
  p.qweight.assign((size_t)(p.in / k * p.out), 0);
  for (int64_t i = 0; i < p.in / k; ++i)
    for (int64_t o = 0; o < p.out; ++o) {
      uint32_t word = 0;
      for (int j = 0; j < k; ++j) word |= ((uint32_t)q.codes[o * q.cols + i * k + j] & mask) << (q.bits * j);
      p.qweight[i * p.out + o] = (int32_t)word;
    }
  p.qzeros.assign((size_t)(p.n_groups * (p.out / k)), 0);
  p.scales.resize((size_t)(p.n_groups * p.out));
  for (int64_t g = 0; g < p.n_groups; ++g) {
    for (int64_t w = 0; w < p.out / k; ++w) {
      uint32_t word = 0;
      for (int j = 0; j < k; ++j) {
        const int64_t o = w * k + j;
        word |= ((uint32_t)((int)q.zeros[o * q.n_groups + g] - 1) & mask) << (q.bits * j);
      }
      p.qzeros[g * (p.out / k) + w] = (int32_t)word;
    }
    for (int64_t o = 0; o < p.out; ++o) p.scales[g * p.out + o] = f32_to_fp16(q.scales[o * q.n_groups + g]);
  }
  p.g_idx.resize((size_t)p.in);
  for (int64_t i = 0; i < p.in; ++i) p.g_idx[i] = (int32_t)q.group_of(i);
  return p;
}

Result<QuantizedMatrix> unpack_autogptq(const PackedGptq& p) {
  if (p.bits != 2 && p.bits != 4 && p.bits != 8) return Unsupported("AutoGPTQ bits must be 2, 4 or 8");
  const int k = 32 / p.bits;
  const uint32_t mask = (1u << p.bits) - 1;
  if (p.in <= 0 || p.out <= 0 || p.in % k || p.out % k || p.n_groups <= 0 ||
      (int64_t)p.qweight.size() != p.in / k * p.out || (int64_t)p.qzeros.size() != p.n_groups * (p.out / k) ||
      (int64_t)p.scales.size() != p.n_groups * p.out || (int64_t)p.g_idx.size() != p.in)
    return Corrupt("AutoGPTQ tensors have inconsistent shapes");
  QuantizedMatrix q = empty_matrix(p.bits, p.in, p.out, p.group > 0 ? p.group : kPerChannel, p.n_groups);
  bool regular = true;
  for (int64_t i = 0; i < p.in; ++i) {
    if (p.g_idx[i] < 0 || p.g_idx[i] >= p.n_groups) return Corrupt("AutoGPTQ g_idx out of range");
    const int64_t expect = p.group > 0 ? i / p.group : 0;
    regular = regular && p.g_idx[i] == expect;
  }
  if (!regular) q.g_idx = p.g_idx;
  for (int64_t i = 0; i < p.in / k; ++i)
    for (int64_t o = 0; o < p.out; ++o) {
      const uint32_t word = (uint32_t)p.qweight[i * p.out + o];
      for (int j = 0; j < k; ++j) q.codes[o * p.in + i * k + j] = (uint8_t)((word >> (p.bits * j)) & mask);
    }
  for (int64_t g = 0; g < p.n_groups; ++g)
    for (int64_t o = 0; o < p.out; ++o) {
      const uint32_t word = (uint32_t)p.qzeros[g * (p.out / k) + o / k];
      const uint32_t z = (word >> (p.bits * (o % k))) & mask;
      q.zeros[o * p.n_groups + g] = (float)(z + 1);
      q.scales[o * p.n_groups + g] = fp16_to_f32(p.scales[g * p.out + o]);
    }
  return q;
}

Result<PackedAwq> pack_autoawq(const QuantizedMatrix& q) {
  FRUGAL_RETURN_IF_ERROR(check_common(q));
  if (q.bits != 4) return Unsupported("AutoAWQ GEMM packing is 4-bit only");
  if (!q.g_idx.empty()) return Unsupported("AutoAWQ has no g_idx: act-order matrices cannot be packed");
  if (q.rows % 8 != 0) return InvalidArgument("AutoAWQ packing needs out a multiple of 8");
  PackedAwq p;
  p.in = q.cols; p.out = q.rows; p.group = q.group > 0 ? q.group : 0; p.n_groups = q.n_groups;
  const int64_t oc = p.out / 8;
  p.qweight.assign((size_t)(p.in * oc), 0);
  for (int64_t i = 0; i < p.in; ++i)
    for (int64_t c = 0; c < oc; ++c) {
      uint32_t word = 0;
      for (int k = 0; k < 8; ++k) word |= ((uint32_t)q.codes[(c * 8 + kAwqOrder[k]) * q.cols + i] & 15u) << (4 * k);
      p.qweight[i * oc + c] = (int32_t)word;
    }
  p.qzeros.assign((size_t)(p.n_groups * oc), 0);
  p.scales.resize((size_t)(p.n_groups * p.out));
  for (int64_t g = 0; g < p.n_groups; ++g) {
    for (int64_t c = 0; c < oc; ++c) {
      uint32_t word = 0;
      for (int k = 0; k < 8; ++k) word |= ((uint32_t)q.zeros[(c * 8 + kAwqOrder[k]) * q.n_groups + g] & 15u) << (4 * k);
      p.qzeros[g * oc + c] = (int32_t)word;
    }
    for (int64_t o = 0; o < p.out; ++o) p.scales[g * p.out + o] = f32_to_fp16(q.scales[o * q.n_groups + g]);
  }
  return p;
}

Result<QuantizedMatrix> unpack_autoawq(const PackedAwq& p) {
  const int64_t oc = p.out / 8;
  if (p.in <= 0 || p.out <= 0 || p.out % 8 || p.n_groups <= 0 || (p.group > 0 && p.in != p.group * p.n_groups) ||
      (int64_t)p.qweight.size() != p.in * oc || (int64_t)p.qzeros.size() != p.n_groups * oc ||
      (int64_t)p.scales.size() != p.n_groups * p.out)
    return Corrupt("AutoAWQ tensors have inconsistent shapes");
  QuantizedMatrix q = empty_matrix(4, p.in, p.out, p.group > 0 ? p.group : kPerChannel, p.n_groups);
  for (int64_t i = 0; i < p.in; ++i)
    for (int64_t c = 0; c < oc; ++c) {
      const uint32_t word = (uint32_t)p.qweight[i * oc + c];
      for (int k = 0; k < 8; ++k) q.codes[(c * 8 + kAwqOrder[k]) * p.in + i] = (uint8_t)((word >> (4 * k)) & 15u);
    }
  for (int64_t g = 0; g < p.n_groups; ++g)
    for (int64_t c = 0; c < oc; ++c) {
      const uint32_t word = (uint32_t)p.qzeros[g * oc + c];
      for (int k = 0; k < 8; ++k) {
        const int64_t o = c * 8 + kAwqOrder[k];
        q.zeros[o * p.n_groups + g] = (float)((word >> (4 * k)) & 15u);
        q.scales[o * p.n_groups + g] = fp16_to_f32(p.scales[g * p.out + o]);
      }
    }
  return q;
}

}  // namespace frugal::quant
