// Whole-model weight quantization for Llama-family decoders: RTN, FP8, GPTQ, AWQ, SmoothQuant.
//
// Calibrated methods run the model layer by layer over calibration windows (own runner over the
// backend/cpu ops, float weights): for each layer, the inputs of each linear are captured, the
// linear is quantized, and its quantized output is what the next linear (and the next layer)
// sees, in the order q,k,v → o → gate,up → down. Attention runs causally within each window.
//
// Result: per layer, the quantized matrices (codes/scales, or FP8 codes) plus the float weights
// they dequantize to ("effective" weights, in the model's basis) and the RMSNorm weights after
// any scale folding (AWQ and SmoothQuant divide attn_norm/ffn_norm by s; s for down_proj is
// folded into the rows of up_proj). Embeddings and the output head stay as they are.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "quant/awq.h"
#include "quant/fp8.h"
#include "quant/gptq.h"
#include "quant/precision.h"
#include "quant/rtn.h"

namespace frugal::quant {

enum class Method { kRtn, kGptq, kAwq, kSmoothQuant, kFp8 };
const char* method_name(Method m);
std::optional<Method> method_from_name(std::string_view s);
inline bool method_needs_calibration(Method m) {
  return m == Method::kGptq || m == Method::kAwq || m == Method::kSmoothQuant;
}

struct ModelQuantOptions {
  Method method = Method::kRtn;
  IntQuantParams quant;            // RTN / GPTQ / AWQ (SmoothQuant uses int8 per-channel)
  Fp8Format fp8 = Fp8Format::kE4M3;
  bool fp8_per_channel = false;
  GptqParams gptq;                 // its .quant is overwritten by `quant`
  AwqParams awq;                   // its .quant is overwritten by `quant`
  double smooth_alpha = 0.5;
  // Mixed precision (quant/mixed_precision.h): per layer, per linear (kLinearNames order), a
  // precision that replaces the method's default for that linear; empty = uniform. Integer
  // precisions still go through the method (GPTQ/AWQ with their bits/group); AWQ/SmoothQuant
  // scale searches use `quant` above.
  std::vector<std::array<std::optional<Precision>, 7>> per_linear;
};

// The precision the method gives every linear when no override applies (FP8: fp8 per tensor or
// channel; SmoothQuant: int8 per channel; RTN/GPTQ/AWQ: `quant`).
Precision default_precision(const ModelQuantOptions& o);
// The precision of linear `i` of layer `L` under `o` (the override if any, else the default).
Precision linear_precision(const ModelQuantOptions& o, int L, int i);

// Checks the options against the model's shapes (group divides every row length, bits, ...)
// before any work starts.
Status validate_for_model(const ModelQuantOptions& o, const ModelConfig& c);

// The 7 matrices of a layer in processing order.
inline constexpr const char* kLinearNames[7] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                "ffn_gate", "ffn_up", "ffn_down"};

struct QuantizedLinearOut {
  std::optional<QuantizedMatrix> q;  // integer methods
  std::optional<Fp8Matrix> fp8;      // FP8
  std::vector<float> effective;      // [rows, cols] float weights the quantized tensor stands for
  int64_t rows = 0, cols = 0;
  Precision precision;               // what the linear is stored as (its layout gives its bytes)
};

struct QuantizedLayer {
  QuantizedLinearOut linears[7];     // kLinearNames order
  std::vector<float> attn_norm, ffn_norm;  // after folding
  bool norms_changed = false;
};

struct LayerProgress {
  int layer = 0, n_layers = 0;
  double elapsed_s = 0, eta_s = 0;
};

struct ModelQuantResult {
  std::vector<QuantizedLayer> layers;
  std::vector<std::string> notes;    // per-layer summaries (AWQ α, ...)
};

// `calib`: token windows (each of the same length) for calibrated methods, ignored otherwise.
Result<ModelQuantResult> quantize_model(const Model& m, const ModelQuantOptions& o,
                                        const std::vector<std::vector<int32_t>>& calib, ThreadPool& pool,
                                        const std::function<void(const LayerProgress&)>& progress = {});

// The calibration runner alone with float weights: logits of the window's last token (checks
// the runner against the engine's forward pass).
Result<std::vector<float>> calibration_forward_logits(const Model& m, const std::vector<int32_t>& window,
                                                      ThreadPool& pool);

// Calibration windows: n windows of len tokens at evenly spaced offsets of `tokens`.
// InvalidArgument when the text is too short.
Result<std::vector<std::vector<int32_t>>> calibration_windows(const std::vector<int32_t>& tokens, int64_t n,
                                                              int64_t len);

}  // namespace frugal::quant
