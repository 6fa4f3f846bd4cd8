// The quantization quality table: one model quantized by several methods (in memory, with the same
// quantize_model as `frugal quantize`), each evaluated against the unquantized model on the same
// windows (eval/compare.h: perplexity, mean KL, top-1 agreement, Δp) and sized by quant/layouts.h.
//
// Row ids (default set: default_quality_rows):
//   f16                linears rounded to fp16 (the 16-bit baseline)
//   int8               INT8 per-channel symmetric RTN
//   int4-{rtn,gptq,awq}  INT4 asymmetric at the model's "g128" (g128 when 128 divides every row,
//                      else g64, else per-channel: the label says which)
//   w8a8               SmoothQuant α 0.5 W8A8: int8 per-channel weights (I8_ROW) and int8
//                      per-token dynamic activations (cpu::matmul_i8_token), as the exported
//                      checkpoint runs
//   int8-w8a8          INT8 per-channel RTN, no smoothing, run W8A8 likewise (smoothing's effect)
//   sq-w8              SmoothQuant α 0.5 weights with float activations (weight half only; not in
//                      the default set)
//   fp8                FP8 E4M3, per-tensor scale
//   int3-{rtn,gptq,awq}  INT3 asymmetric at the same group
//   int4g32-rtn        INT4 asymmetric g32 RTN (on a Q4_1 model: the input's own grid, an artifact)
//   int4ch-{rtn,gptq}  INT4 asymmetric per-channel (not in the default set)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "eval/compare.h"
#include "quant/model_quantizer.h"

namespace frugal {

struct QualityRow {
  std::string id;
  std::string label;  // method and precision, e.g. "GPTQ INT4 g64 asym"
  quant::ModelQuantOptions options;
  bool int8_token_acts = false;  // run the int8 per-channel linears W8A8 (quant/i8_row_model.h)
};

// All rows this model's shapes allow, in table order; `group_note` says which group stands in for
// g128 and why. `ids` selects and orders a subset (empty: the default set); unknown ids are an error.
Result<std::vector<QualityRow>> quality_rows(const ModelConfig& c, const std::vector<std::string>& ids,
                                             std::string& group_note);

struct QualityResult {
  std::string id, label, precision;
  double bits_per_weight = 0;     // of the linears, scales and zeros included (layouts.h)
  uint64_t model_bytes = 0;       // whole model (layouts.h), embeddings as loaded
  CompareResult cmp;
  double quantize_seconds = 0;
};

struct QualityTableParams {
  CompareParams compare;
  std::vector<std::vector<int32_t>> calib;  // calibration windows (GPTQ/AWQ/SmoothQuant)
};

// Runs every row (reference logits computed once). progress(message) between steps.
Result<std::vector<QualityResult>> run_quality_table(const Model& m, ThreadPool& pool,
                                                     const std::vector<std::span<const int32_t>>& windows,
                                                     const std::vector<QualityRow>& rows,
                                                     const QualityTableParams& p,
                                                     const std::function<void(const std::string&)>& progress = {},
                                                     const std::function<void(const QualityResult&)>& on_row = {});

// Markdown: | method | precision | bits/weight | model bytes | PPL | ΔPPL | mean KL | top-1 | Δp |
// The first result is expected to be the "as loaded" reference (KL 0).
std::string quality_table_markdown(const std::vector<QualityResult>& results);
std::string quality_row_markdown(const QualityResult& r, double ppl_ref);

}  // namespace frugal
