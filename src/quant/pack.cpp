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

// AutoGPTQ's packing is a little-endian bit stream of 32-bit words: value j occupies stream bits
// [bits·j, bits·(j+1)), stream bit b being bit b % 32 of word b / 32. For 2/4/8 bits a value never
// straddles words; for 3 bits, 32 values fill 3 words and values 10 and 21 straddle (the layout of
// AutoGPTQ's QuantLinear.pack). Consecutive words of one stream are `stride` int32s apart.
void put_bits(int32_t* words, int64_t stride, int64_t j, int bits, uint32_t v) {
  const int64_t b = j * bits, w = b / 32;
  const int sh = (int)(b % 32);
  uint32_t* lo = reinterpret_cast<uint32_t*>(words + w * stride);
  *lo |= v << sh;
  if (sh + bits > 32) *reinterpret_cast<uint32_t*>(words + (w + 1) * stride) |= v >> (32 - sh);
}

uint32_t get_bits(const int32_t* words, int64_t stride, int64_t j, int bits) {
  const int64_t b = j * bits, w = b / 32;
  const int sh = (int)(b % 32);
  uint32_t v = (uint32_t)words[w * stride] >> sh;
  if (sh + bits > 32) v |= (uint32_t)words[(w + 1) * stride] << (32 - sh);
  return v;
}

// in and out must be multiples of this so every stream fills whole words.
int64_t gptq_multiple(int bits) { return bits == 3 ? 32 : 32 / bits; }

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
  if (q.bits != 2 && q.bits != 3 && q.bits != 4 && q.bits != 8)
    return Unsupported(fmt::format("AutoGPTQ packing of {}-bit weights is not supported (2, 3, 4, 8)", q.bits));
  const int64_t m = gptq_multiple(q.bits);
  if (q.cols % m != 0 || q.rows % m != 0)
    return InvalidArgument(fmt::format("AutoGPTQ {}-bit packing needs in and out multiples of {}", q.bits, m));
  const uint32_t mask = (1u << q.bits) - 1;
  PackedGptq p;
  p.bits = q.bits; p.in = q.cols; p.out = q.rows; p.group = q.group > 0 ? q.group : 0; p.n_groups = q.n_groups;
  const int64_t in_words = p.in * p.bits / 32, out_words = p.out * p.bits / 32;
  p.qweight.assign((size_t)(in_words * p.out), 0);
  // Column o of qweight is the bit stream of row o's codes along `in`.
  for (int64_t o = 0; o < p.out; ++o)
    for (int64_t i = 0; i < p.in; ++i)
      put_bits(p.qweight.data() + o, p.out, i, p.bits, (uint32_t)q.codes[o * q.cols + i] & mask);
  p.qzeros.assign((size_t)(p.n_groups * out_words), 0);
  p.scales.resize((size_t)(p.n_groups * p.out));
  for (int64_t g = 0; g < p.n_groups; ++g) {
    // Row g of qzeros is the bit stream of (zero − 1) mod 2^bits along `out`.
    for (int64_t o = 0; o < p.out; ++o)
      put_bits(p.qzeros.data() + g * out_words, 1, o, p.bits,
               (uint32_t)((int)q.zeros[o * q.n_groups + g] - 1) & mask);
    for (int64_t o = 0; o < p.out; ++o) p.scales[g * p.out + o] = f32_to_fp16(q.scales[o * q.n_groups + g]);
  }
  p.g_idx.resize((size_t)p.in);
  for (int64_t i = 0; i < p.in; ++i) p.g_idx[i] = (int32_t)q.group_of(i);
  return p;
}

Result<QuantizedMatrix> unpack_autogptq(const PackedGptq& p) {
  if (p.bits != 2 && p.bits != 3 && p.bits != 4 && p.bits != 8)
    return Unsupported(fmt::format("AutoGPTQ bits must be 2, 3, 4 or 8, not {}", p.bits));
  const int64_t m = gptq_multiple(p.bits);
  const uint32_t mask = (1u << p.bits) - 1;
  if (p.in <= 0 || p.out <= 0 || p.in % m || p.out % m || p.n_groups <= 0)
    return Corrupt("AutoGPTQ tensors have inconsistent shapes");
  const int64_t in_words = p.in * p.bits / 32, out_words = p.out * p.bits / 32;
  if ((int64_t)p.qweight.size() != in_words * p.out || (int64_t)p.qzeros.size() != p.n_groups * out_words ||
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
  for (int64_t o = 0; o < p.out; ++o)
    for (int64_t i = 0; i < p.in; ++i)
      q.codes[o * p.in + i] = (uint8_t)(get_bits(p.qweight.data() + o, p.out, i, p.bits) & mask);
  for (int64_t g = 0; g < p.n_groups; ++g)
    for (int64_t o = 0; o < p.out; ++o) {
      const uint32_t z = get_bits(p.qzeros.data() + g * out_words, 1, o, p.bits) & mask;
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
