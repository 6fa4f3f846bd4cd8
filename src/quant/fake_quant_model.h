// Evaluating quantized weights without writing a file: a Model whose quantized layers point at
// the effective float weights of a quantization result (the values the quantized tensors stand
// for, as F32 views), and whose other tensors are the base model's. The engine then computes
// exactly what a file with these weights would give ("fake quant"; bytes come from layouts.h).
#pragma once

#include "model/model.h"
#include "quant/model_quantizer.h"

namespace frugal::quant {

// A model sharing all of `base`'s weights and storage (no tokenizer).
Model share_weights(const Model& base);
// Points layer L's 7 linears (and its norms) at `ql`'s effective weights; `ql` must outlive `m`.
void substitute_layer(Model& m, int L, const QuantizedLayer& ql);
// Points one linear (kLinearNames index i) of layer L at `effective` [rows, cols] (must outlive m).
void substitute_linear(Model& m, int L, int i, const std::vector<float>& effective);
// Linear i (kLinearNames order) of a layer.
const TensorView& linear_tensor(const LayerWeights& lw, int i);
// The float values of one linear of the model as loaded (dequantized).
std::vector<float> linear_as_float(const Model& m, int L, int i);
// share_weights + substitute_layer for every layer of `r` (r must outlive the result).
Model model_with_quantized_layers(const Model& base, const ModelQuantResult& r);

}  // namespace frugal::quant
