// Evaluating W8A8 without writing a file: like model_with_quantized_layers (fake_quant_model.h),
// but every linear whose codes are int8 per channel (symmetric, what SmoothQuant and INT8
// per-channel RTN produce) is held as an I8_ROW tensor (engine_pack.h, exact) instead of its
// effective float weights, and the model is marked to run those linears with int8 per-token
// activations (Model::int8_token_activations) — what loading the exported checkpoint gives.
#pragma once

#include "base/status.h"
#include "model/model.h"
#include "quant/model_quantizer.h"

namespace frugal::quant {

// `r` must outlive the result (its other linears and folded norms are shared as F32 views).
// InvalidArgument when no linear of `r` is int8 per channel.
Result<Model> model_with_i8_row_layers(const Model& base, const ModelQuantResult& r);

}  // namespace frugal::quant
