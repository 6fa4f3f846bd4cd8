#include "eval/sensitivity.h"

#include "quant/fake_quant_model.h"

namespace frugal {

Status measure_sensitivity(const Model& m, ThreadPool& pool, const std::vector<std::span<const int32_t>>& windows,
                           const quant::Precision& low, std::vector<quant::BudgetUnit>& units,
                           const CompareParams& params, const std::function<void(size_t, size_t)>& progress) {
  FRUGAL_ASSIGN_OR_RETURN(ReferenceRun ref, run_reference(m, pool, windows, params));
  for (size_t k = 0; k < units.size(); ++k) {
    quant::BudgetUnit& u = units[k];
    Model q = quant::share_weights(m);
    std::vector<std::vector<float>> eff;
    eff.reserve(u.linears.size());
    for (int i : u.linears) {
      const std::vector<float> w = quant::linear_as_float(m, u.layer, i);
      const TensorView& t = quant::linear_tensor(m.weights.layers[u.layer], i);
      FRUGAL_ASSIGN_OR_RETURN(std::vector<float> e, quant::fake_quantize(w.data(), t.rows(), t.cols(), low));
      eff.push_back(std::move(e));
      quant::substitute_linear(q, u.layer, i, eff.back());
    }
    FRUGAL_ASSIGN_OR_RETURN(CompareResult r, compare_to_reference(q, ref, pool, params));
    u.sensitivity = r.kl.mean;
    if (progress) progress(k + 1, units.size());
  }
  return Status::Ok();
}

}  // namespace frugal
