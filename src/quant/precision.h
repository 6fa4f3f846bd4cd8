// The precision one weight tensor is stored in, as named on the command line and in mixed-
// precision policies, and its layout (quant/layouts.h) for byte accounting.
//
//   name            kind   meaning                                         layout
//   f32, f16        float  plain floats (f16: values rounded to fp16)      32 / 16 bpw
//   q8_0            int    8-bit sym, groups of 32 (ggml Q8_0)             8.5 bpw
//   q4_0 / q4_1     int    4-bit sym / asym, groups of 32 (ggml)           4.5 / 5.0 bpw
//   int8            int    8-bit sym, one scale per output row             8 + 16/in
//   intB-gG[-sym]   int    B-bit (2,3,4,8) asym (or sym), groups of G      B + 32/G (sym: B + 16/G)
//   intB-ch[-sym]   int    B-bit, one scale (+zero) per output row         B + 32/in (sym: B + 16/in)
//   fp8, fp8-ch     fp8    E4M3, per-tensor / per-row fp32 scale           8 (+4 B) / 8 + 32/in
//   fp8-e5m2[-ch]   fp8    E5M2 likewise
// Integer precisions are produced by the quantization method of the run (RTN, GPTQ, AWQ; RTN
// under SmoothQuant/FP8 runs); float and fp8 precisions need no calibration.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "quant/fp8.h"
#include "quant/layouts.h"
#include "quant/rtn.h"
#include "tensor/dtype.h"

namespace frugal::quant {

struct Precision {
  enum class Kind : uint8_t { kFloat, kInt, kFp8 };
  Kind kind = Kind::kFloat;
  DType float_type = DType::F16;  // kFloat: F16 or F32
  IntQuantParams quant;           // kInt (bits, group, symmetric)
  Fp8Format fp8 = Fp8Format::kE4M3;
  bool fp8_per_channel = false;

  static Precision floating(DType t) { Precision p; p.float_type = t; return p; }
  static Precision integer(int bits, int64_t group, bool symmetric) {
    Precision p;
    p.kind = Kind::kInt;
    p.quant.bits = bits;
    p.quant.group = group;
    p.quant.symmetric = symmetric;
    return p;
  }
};

// Parses a precision name (table above, case-insensitive). InvalidArgument lists the forms.
Result<Precision> parse_precision(std::string_view name);
// The canonical name ("int4-g64", "f16", "fp8-ch", ...); q8_0/q4_0/q4_1 print as ggml names.
std::string precision_name(const Precision& p);
// Storage layout for byte accounting.
Layout precision_layout(const Precision& p);
// Bytes of a [rows, cols] tensor in this precision (layouts.h rule).
inline uint64_t precision_bytes(const Precision& p, int64_t rows, int64_t cols) {
  return layout_bytes(precision_layout(p), cols, rows);
}
// Checks that the precision fits a row length (the group divides it, ...).
Status validate_precision(const Precision& p, int64_t cols);

// The float values W [rows, cols] stands for in precision p, without calibration (integer
// precisions by RTN, fp8 by scaling, f16 by rounding).
Result<std::vector<float>> fake_quantize(const float* w, int64_t rows, int64_t cols, const Precision& p);

}  // namespace frugal::quant
