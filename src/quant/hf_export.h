// Writing a quantized model as a Hugging Face directory that other tools load:
//   OUT/config.json        LlamaForCausalLM config + "quantization_config" (quant/hf_quant_config.h)
//   OUT/model.safetensors  HF tensor names; embeddings and norms (after AWQ/SmoothQuant folding) in
//                          F16 (or F32); Q/K rows in HF order (a GGUF model's RoPE permutation undone);
//                          each quantized linear in the format's layout.
//   OUT/tokenizer.json, tokenizer_config.json: copied when the input is an HF directory that has
//                          them (a GGUF's embedded tokenizer is not converted to tokenizer.json).
// The format follows from the method:
//   RTN / GPTQ (and AWQ other than 4-bit g>0) → AutoGPTQ v1 (bits 2/3/4/8, group or per channel)
//   AWQ 4-bit, groups                         → AutoAWQ GEMM
//   SmoothQuant (int8 per channel, sym)       → compressed-tensors int-quantized, dynamic per-token
//                                               int8 activations (W8A8, what SmoothQuant is for)
//   FP8 E4M3 (per tensor or per channel)      → compressed-tensors float-quantized, weight-only
//                                               (frugal's FP8 runs leave activations in float)
// compressed-tensors is the format vLLM reads natively for FP8 and INT8 (W8A8 and W8A16) with
// per-channel or per-tensor f32 weight_scale; HF's "fp8" config has no per-channel scales and AutoGPTQ
// has no W8A8. FP8 E5M2 weights have no format vLLM/HF read: refused (use a .gguf OUT).
// Mixed precision (per-linear overrides): int linears with other bits/group are written with
// GPTQModel's "dynamic" per-module overrides (AutoGPTQ format only); linears kept in float are
// written as plain .weight tensors and listed as not converted ("dynamic" "-:" entries, AutoAWQ
// modules_to_not_convert, compressed-tensors ignore). A mix a format cannot describe is refused
// before any work (validate_hf_export).
//
// AutoGPTQ v1 stores zeros minus one, so a zero of 0 (asymmetric groups whose minimum is ≥ −scale/2)
// cannot be stored. The writer re-expresses such a group exactly as codes + 1 with zero 1 when no
// code is 2^b − 1; otherwise it stores zero 1 with codes + 1 clamped at 2^b − 1 (those weights move
// by one scale step) and reports the count in the notes. AutoAWQ stores zeros as they are.
//
// The directory is written as "OUT.tmp" and renamed to OUT at the end; on any failure it is
// removed. OUT must not exist, or be an empty directory.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "quant/hf_quant_config.h"
#include "quant/model_quantizer.h"

namespace frugal::quant {

struct HfExportOptions {
  bool f32_unquantized = false;  // embeddings/norms/float linears in F32 instead of F16
};

struct HfExportReport {
  HfQuantConfig config;           // what config.json says
  int packed_linears = 0;         // linears in the format's packed layout
  int float_linears = 0;          // linears written as plain .weight (mixed precision)
  int64_t gptq_zero_shifted = 0;  // groups re-expressed exactly (zero 0 → 1)
  int64_t gptq_zero_clamped = 0;  // groups where codes 2^b − 1 moved by one step
  bool tokenizer_copied = false;
  uint64_t bytes = 0;             // all files written
  std::vector<std::string> notes;
};

// The format the options map to; Unsupported (with the reason) when no directory format fits,
// checked against the model's shapes for every linear (before any quantization work).
Result<HfQuantConfig> validate_hf_export(const ModelQuantOptions& o, const ModelConfig& c);

// OUT must not exist (or be an empty directory), its parent must exist, and OUT.tmp must not exist.
Status check_hf_output_dir(const std::string& out_dir);

Result<HfExportReport> write_quantized_hf_dir(const Model& m, const ModelQuantResult& r,
                                              const ModelQuantOptions& o, const HfExportOptions& e,
                                              const std::string& out_dir);

// Rows of a GGUF-order Q/K matrix in Hugging Face order: GGUF row 2i+j of a head is HF row
// j·(hd/2)+i. `row` maps an HF row index to its GGUF row.
int64_t gguf_row_of_hf_row(int64_t hf_row, int64_t head_dim);

// AutoGPTQ v1 cannot store zero 0; see the header comment. Returns {shifted, clamped} groups.
std::pair<int64_t, int64_t> fit_gptq_v1_zeros(QuantizedMatrix& q);

}  // namespace frugal::quant
