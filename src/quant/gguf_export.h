// Writing a quantized model back to GGUF. Every tensor of the input file is copied (metadata in
// order too, except general.file_type, which no longer describes the file), and each layer's
// 7 linears and, when scales were folded, its norms are replaced:
//   integer, 8-bit g32 symmetric  → Q8_0  (d = scale, q − 128: exact)
//   integer, 4-bit g32 symmetric  → Q4_0  (d = scale, q: exact)
//   integer, 4-bit g32 asymmetric → Q4_1  (d = scale, m = fp16(−scale·zero): exact up to m's fp16 rounding)
//   kept in f16 by a mixed-precision policy → F16
//   anything else (other bits/groups, act-order g_idx, FP8, W8A8) → F32 tensors holding the
//   dequantized weights ("fake quant": the engine evaluates the quantized values, but the file
//   does not have their size; the layout's true size comes from quant/layouts.h).
// Keys frugal.quantize.* record the method and parameters.
#pragma once

#include <string>

#include "base/status.h"
#include "formats/gguf.h"
#include "quant/model_quantizer.h"

namespace frugal::quant {

struct GgufExportReport {
  int ggml_tensors = 0;      // linears written in a native ggml type
  int fake_tensors = 0;      // linears written as dequantized F32
  int f16_tensors = 0;       // linears kept in 16-bit (mixed precision), written as F16
  std::string native_type;   // "Q4_0", "Q4_1", "Q8_0" or ""
  uint64_t file_bytes = 0;
};

Result<GgufExportReport> write_quantized_gguf(const gguf::GgufFile& in, const ModelQuantResult& r,
                                              const ModelQuantOptions& o, const std::string& out_path);

// The ggml type a quantized matrix maps to exactly (F32 when none does).
DType native_ggml_type(const QuantizedMatrix& q);
// Encode q (which must map to `t`) as ggml blocks, row by row.
std::vector<uint8_t> encode_ggml(const QuantizedMatrix& q, DType t);

}  // namespace frugal::quant
