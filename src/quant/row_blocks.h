// frugal's own in-memory weight layouts (the DTypes after I32 in tensor/dtype.h): their block
// structs and scalar reference quantize / dequantize. ggml's types are in quant/ggml_blocks.h;
// quantize_row / dequantize_row there dispatch here for these dtypes.
//
//   I4_G64   { fp16 d; u8 qs[32]; }          34 B / 64 weights  w = d*(q-8)
//   I4_G64A  { fp16 d; fp16 m; u8 qs[32]; }  36 B / 64 weights  w = d*q + m
//   I4_G128  { fp16 d; u8 qs[64]; }          66 B / 128         w = d*(q-8)
//   I4_G128A { fp16 d; fp16 m; u8 qs[64]; }  68 B / 128         w = d*q + m
//     nibble order as ggml Q4_0: q[j] = qs[j] & 15, q[j+G/2] = qs[j] >> 4 for j in [0, G/2).
//   I8_ROW   row = f32 s, int8 q[n]          w = s*q
//   E4M3_ROW row = f32 s, fp8 e4m3 q[n]      w = s*e4m3(q)
//   E5M2_ROW row = f32 s, fp8 e5m2 q[n]      w = s*e5m2(q)
//     (the f32 scale sits at the start of the row and is not 4-byte aligned in general: the row
//      stride is n + 4 bytes; read it with memcpy.)
//
// Quantizers are round-to-nearest (ties to even), consistent with quant/rtn.h:
//   I4 sym:  d = fp16(max|w| / 7), q = clamp(round(w/d) + 8, 0, 15)    (codes 1..15 unless clamped)
//   I4 asym: d = fp16((max-min) / 15), m = fp16(min), q = clamp(round((w-m)/d), 0, 15)
//   I8_ROW:  s = max|w| / 127, q = clamp(round(w/s), -127, 127)
//   E4M3_ROW / E5M2_ROW: s = max|w| / 448 (E4M3) or / 57344 (E5M2), q = fp8(w/s) (exact codec,
//            base/fp8.h)
// An all-zero group/row gets d = s = 0 (and q = 8 / 0): it dequantizes to exact zeros.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace frugal {

template <int G>
struct BlockI4Sym {
  uint16_t d;
  uint8_t qs[G / 2];
};
template <int G>
struct BlockI4Asym {
  uint16_t d;
  uint16_t m;
  uint8_t qs[G / 2];
};
using BlockI4G64 = BlockI4Sym<64>;
using BlockI4G64A = BlockI4Asym<64>;
using BlockI4G128 = BlockI4Sym<128>;
using BlockI4G128A = BlockI4Asym<128>;
static_assert(sizeof(BlockI4G64) == 34 && sizeof(BlockI4G64A) == 36);
static_assert(sizeof(BlockI4G128) == 66 && sizeof(BlockI4G128A) == 68);

// True for the dtypes this file handles.
bool is_row_block_dtype(DType t);

// One row of n weights (for *_ROW: n is the whole row, scale included in src/dst; for I4_*: n a
// multiple of the group). Returns false (and leaves dst alone) for other dtypes.
bool dequantize_row_block(DType t, const void* src, float* dst, int64_t n);
bool quantize_row_block(DType t, const float* src, void* dst, int64_t n);

}  // namespace frugal
