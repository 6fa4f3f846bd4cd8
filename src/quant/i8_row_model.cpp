#include "quant/i8_row_model.h"

#include <memory>
#include <vector>

#include "quant/engine_pack.h"
#include "quant/fake_quant_model.h"

namespace frugal::quant {

Result<Model> model_with_i8_row_layers(const Model& base, const ModelQuantResult& r) {
  Model m = model_with_quantized_layers(base, r);
  int64_t n_i8 = 0;
  for (size_t L = 0; L < r.layers.size(); ++L) {
    LayerWeights& lw = m.weights.layers[L];
    TensorView* views[7] = {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down};
    for (int i = 0; i < 7; ++i) {
      const QuantizedLinearOut& ql = r.layers[L].linears[i];
      if (!ql.q || exact_engine_dtype(*ql.q) != DType::I8_ROW) continue;
      FRUGAL_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, encode_engine(*ql.q, DType::I8_ROW));
      auto buf = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
      views[i]->dtype = DType::I8_ROW;
      views[i]->data = buf->data();
      views[i]->nbytes = buf->size();
      m.storage.push_back(std::move(buf));
      ++n_i8;
    }
  }
  if (n_i8 == 0) return InvalidArgument("W8A8 needs int8 per-channel linears; this quantization has none");
  m.int8_token_activations = true;
  return m;
}

}  // namespace frugal::quant
