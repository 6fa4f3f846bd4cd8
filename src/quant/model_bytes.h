// A model's weight bytes as quant/layouts.h counts them (the layout's real size, whatever file a
// quantized model was written to): the 7 linears of every layer plus the other tensors
// (embeddings, output head unless tied, norms) in the dtype they were loaded in.
#pragma once

#include <cstdint>

#include "model/model.h"
#include "quant/model_quantizer.h"

namespace frugal::quant {

struct ModelBytes {
  uint64_t linears = 0;         // the n_layers × 7 matrices
  uint64_t other = 0;           // embeddings, untied output head, norms
  int64_t linear_weights = 0;   // elements of the linears
  uint64_t total() const { return linears + other; }
  // Bits per weight of the linears, scales and zeros included.
  double linear_bits_per_weight() const { return linear_weights ? 8.0 * (double)linears / (double)linear_weights : 0; }
};

// The model as loaded (each tensor in its own dtype's layout).
ModelBytes model_bytes(const Model& m);
// The model with the linears of a quantization result (each in its recorded precision).
ModelBytes model_bytes(const Model& m, const ModelQuantResult& r);
// The bytes a quantization run with options `o` will produce (same rule, before any work).
ModelBytes predicted_model_bytes(const Model& m, const ModelQuantOptions& o);
// Bytes of one linear of the model (L, i in kLinearNames order) in precision p.
uint64_t linear_bytes(const ModelConfig& c, int i, const Precision& p);

}  // namespace frugal::quant
