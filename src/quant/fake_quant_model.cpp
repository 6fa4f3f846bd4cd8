#include "quant/fake_quant_model.h"

#include "backend/cpu/repack.h"
#include "quant/ggml_blocks.h"

namespace frugal::quant {

namespace {

TensorView f32_view(const TensorView& like, const std::vector<float>& data) {
  TensorView v;
  v.name = like.name;
  v.dtype = DType::F32;
  v.shape = like.shape;
  v.data = data.data();
  v.nbytes = data.size() * sizeof(float);
  return v;
}

}  // namespace

Model share_weights(const Model& base) {
  Model m;
  m.config = base.config;
  m.weights = base.weights;
  m.format = base.format;
  m.path = base.path;
  m.storage = base.storage;
  return m;
}

void substitute_layer(Model& m, int L, const QuantizedLayer& ql) {
  LayerWeights& lw = m.weights.layers[L];
  TensorView* views[7] = {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down};
  for (int i = 0; i < 7; ++i) *views[i] = f32_view(*views[i], ql.linears[i].effective);
  if (ql.norms_changed) {
    lw.attn_norm = f32_view(lw.attn_norm, ql.attn_norm);
    lw.ffn_norm = f32_view(lw.ffn_norm, ql.ffn_norm);
  }
}

namespace {

TensorView* linear_view(LayerWeights& lw, int i) {
  TensorView* views[7] = {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down};
  return views[i];
}

}  // namespace

void substitute_linear(Model& m, int L, int i, const std::vector<float>& effective) {
  TensorView* v = linear_view(m.weights.layers[L], i);
  *v = f32_view(*v, effective);
}

const TensorView& linear_tensor(const LayerWeights& lw, int i) {
  const TensorView* views[7] = {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down};
  return *views[i];
}

std::vector<float> linear_as_float(const Model& m, int L, int i) {
  const TensorView& t = linear_tensor(m.weights.layers[L], i);
  std::vector<float> out((size_t)t.numel());
  for (int64_t r = 0; r < t.rows(); ++r) cpu::dequantize_weight_row(t, r, out.data() + r * t.cols());
  return out;
}

Model model_with_quantized_layers(const Model& base, const ModelQuantResult& r) {
  Model m = share_weights(base);
  for (size_t L = 0; L < r.layers.size(); ++L) substitute_layer(m, (int)L, r.layers[L]);
  return m;
}

}  // namespace frugal::quant
