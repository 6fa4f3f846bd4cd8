// Packed checkpoint layouts other tools read: AutoGPTQ and AutoAWQ (GEMM version).
//
// AutoGPTQ (checkpoint format v1), bits ∈ {2, 3, 4, 8}, W [out, in], G groups along in:
//   qweight int32 [in·bits/32, out]: column o is a little-endian bit stream of q[o, 0..in): code i at
//                                    stream bits [bits·i, bits·(i+1)), stream bit b = bit b%32 of
//                                    word b/32. For 2/4/8 bits: word (w, o) holds q[o, w·k + j] at
//                                    bits·j (k = 32/bits). For 3 bits, 32 codes fill 3 words and
//                                    codes 10 and 21 straddle two words (2+1 and 1+2 bits).
//   qzeros  int32 [G, out·bits/32]:  row g is the same kind of stream of (zero[o, g] − 1) mod 2^bits
//   (in and out multiples of 32/bits; of 32 for 3 bits)
//   scales  fp16  [G, out];  g_idx int32 [in] (= i / group unless act-order)
//   dequant: w[o, i] = scales[g_idx[i], o] · (q[o, i] − (stored_zero + 1))
// AutoAWQ GEMM, 4-bit only:
//   qweight int32 [in, out/8]: word (i, c) holds q[c·8 + order[k], i] at 4·k, order = [0,2,4,6,1,3,5,7]
//   qzeros  int32 [G, out/8]:  same interleave, zeros stored as they are
//   scales  fp16  [G, out];    dequant: w[o, i] = scales[i/group, o] · (q[o, i] − zero[i/group, o])
// Per-channel matrices pack as one group spanning the row (AutoGPTQ group_size −1).
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "quant/rtn.h"

namespace frugal::quant {

inline constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

struct PackedGptq {
  int bits = 4;
  int64_t in = 0, out = 0, group = 0;  // group: size, or 0 for one group per row
  int64_t n_groups = 1;
  std::vector<int32_t> qweight;  // [in·bits/32, out]
  std::vector<int32_t> qzeros;   // [n_groups, out·bits/32]
  std::vector<uint16_t> scales;  // [n_groups, out] fp16 bits
  std::vector<int32_t> g_idx;    // [in]
};

struct PackedAwq {
  int64_t in = 0, out = 0, group = 0;
  int64_t n_groups = 1;
  std::vector<int32_t> qweight;  // [in, out/8]
  std::vector<int32_t> qzeros;   // [n_groups, out/8]
  std::vector<uint16_t> scales;  // [n_groups, out]
};

// q must be group-wise or per-channel; bits 2/3/4/8. A zero of 0 is stored as 2^bits − 1 and reads
// back as 2^bits (the v1 format cannot hold it; see quant/hf_export.h for how the writer avoids it).
Result<PackedGptq> pack_autogptq(const QuantizedMatrix& q);
Result<QuantizedMatrix> unpack_autogptq(const PackedGptq& p);
// q: 4-bit, group-wise or per-channel, no act-order g_idx; out a multiple of 8.
Result<PackedAwq> pack_autoawq(const QuantizedMatrix& q);
Result<QuantizedMatrix> unpack_autoawq(const PackedAwq& p);

}  // namespace frugal::quant
