#include "quant/model_bytes.h"

namespace frugal::quant {

namespace {

uint64_t view_bytes(const TensorView& t) { return layout_bytes(dtype_layout(t.dtype), t.cols(), t.rows()); }

void linear_shape(const ModelConfig& c, int i, int64_t& rows, int64_t& cols) {
  const int64_t qd = c.head_dim() * c.n_heads, kvd = c.kv_dim();
  const int64_t r[7] = {qd, kvd, kvd, c.dim, c.hidden_dim, c.hidden_dim, c.dim};
  const int64_t k[7] = {c.dim, c.dim, c.dim, qd, c.dim, c.dim, c.hidden_dim};
  rows = r[i];
  cols = k[i];
}

ModelBytes other_bytes(const Model& m) {
  ModelBytes b;
  const ModelWeights& w = m.weights;
  b.other += view_bytes(w.token_embd) + view_bytes(w.output_norm);
  if (w.output.data != w.token_embd.data) b.other += view_bytes(w.output);
  for (const LayerWeights& l : w.layers) b.other += view_bytes(l.attn_norm) + view_bytes(l.ffn_norm);
  return b;
}

}  // namespace

uint64_t linear_bytes(const ModelConfig& c, int i, const Precision& p) {
  int64_t rows = 0, cols = 0;
  linear_shape(c, i, rows, cols);
  return precision_bytes(p, rows, cols);
}

ModelBytes model_bytes(const Model& m) {
  ModelBytes b = other_bytes(m);
  for (const LayerWeights& l : m.weights.layers)
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      b.linears += view_bytes(*t);
      b.linear_weights += t->numel();
    }
  return b;
}

ModelBytes model_bytes(const Model& m, const ModelQuantResult& r) {
  ModelBytes b = other_bytes(m);
  for (const QuantizedLayer& l : r.layers)
    for (const QuantizedLinearOut& lo : l.linears) {
      b.linears += precision_bytes(lo.precision, lo.rows, lo.cols);
      b.linear_weights += lo.rows * lo.cols;
    }
  return b;
}

ModelBytes predicted_model_bytes(const Model& m, const ModelQuantOptions& o) {
  ModelBytes b = other_bytes(m);
  for (int L = 0; L < m.config.n_layers; ++L)
    for (int i = 0; i < 7; ++i) {
      int64_t rows = 0, cols = 0;
      linear_shape(m.config, i, rows, cols);
      b.linears += precision_bytes(linear_precision(o, L, i), rows, cols);
      b.linear_weights += rows * cols;
    }
  return b;
}

}  // namespace frugal::quant
