// Repacking quantized matrices (codes + scales + zeros) into the engine's weight dtypes
// (tensor/dtype.h), used when a quantized checkpoint is loaded. A matrix goes into the dtype that
// holds its values exactly when one exists:
//   4-bit g32, every zero 8 (symmetric)   → Q4_0      d = s, nibble = q               exact
//   4-bit g32, other zeros                → Q4_1      d = s, m = fp16(−s·z)           (*)
//   4-bit g64 / g128 symmetric            → I4_G64 / I4_G128   d = s, nibble = q      exact
//   4-bit g64 / g128 asymmetric           → I4_G64A / I4_G128A d = s, m = fp16(−s·z)  (*)
//   8-bit g32 symmetric (zeros 128)       → Q8_0      d = s, int8 = q − 128           exact
//   8-bit per channel symmetric           → I8_ROW    f32 s, int8 = q − 128           exact
// (*) w = d·q + m differs from s·(q − z) only by m's fp16 rounding: |Δw| ≤ 2^-11·|s·z| (half an
//     fp16 ulp of m), the same for every element of the group.
// "Exactly" assumes fp16-representable scales (true for AutoGPTQ/AutoAWQ checkpoints, whose
// scales are fp16). Anything else — act-order g_idx (columns not in group order), 2/3-bit, 4-bit
// per channel, other group sizes, 8-bit asymmetric — has no engine dtype and is dequantized to
// F16 (|Δw| ≤ 2^-11·|w|, fp16 rounding of s·(q − z)).
// FP8 matrices go to E4M3_ROW / E5M2_ROW (f32 scale per row, the per-tensor scale repeated).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/status.h"
#include "quant/fp8.h"
#include "quant/rtn.h"
#include "tensor/dtype.h"

namespace frugal::quant {

// The dtype that holds q exactly (as above), or nullopt.
std::optional<DType> exact_engine_dtype(const QuantizedMatrix& q);

// q's rows encoded as `t`: an exact dtype from exact_engine_dtype, or F16 (dequantized values
// rounded to fp16). InvalidArgument if t cannot hold q.
Result<std::vector<uint8_t>> encode_engine(const QuantizedMatrix& q, DType t);

// An FP8 matrix as E4M3_ROW or E5M2_ROW rows (codes copied, scale per row).
std::vector<uint8_t> encode_engine_fp8(const Fp8Matrix& m);
inline DType engine_fp8_dtype(Fp8Format f) { return f == Fp8Format::kE4M3 ? DType::E4M3_ROW : DType::E5M2_ROW; }

// int8 codes with one f32 scale per row (w = scale[r]·q) as I8_ROW rows. scales: [rows] or [1].
std::vector<uint8_t> encode_engine_i8_rows(const int8_t* q, const std::vector<float>& scales, int64_t rows,
                                           int64_t cols);

}  // namespace frugal::quant
