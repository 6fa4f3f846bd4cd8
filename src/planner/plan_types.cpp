#include "planner/plan_types.h"

#include <fmt/format.h>

namespace frugal::planner {

WeightFormat Deployment::embedding_format() const {
  if (embeddings) return *embeddings;
  if (weights == WeightFormat::kF32 || weights == WeightFormat::kF16) return weights;
  return WeightFormat::kBF16;
}

std::string Deployment::label() const {
  std::string s = fmt::format("{} w, {} kv, tp {}", file_weights ? "file" : weight_format_name(weights),
                              kv_format_name(kv), tp);
  if (offload_layers > 0) s += fmt::format(", {} layers on host", offload_layers);
  return s;
}

double PlanContext::overhead_bytes() const {
  const double gib = assume.overhead_gib >= 0 ? assume.overhead_gib : (device.is_cpu ? 0.25 : 1.0);
  return gib * 1073741824.0;
}

Status validate_workload(const Workload& w) {
  if (w.batch <= 0) return InvalidArgument("batch must be positive (got " + std::to_string(w.batch) + ")");
  if (w.batch > (int64_t{1} << 24)) return InvalidArgument("batch must be at most 2^24 sequences");
  if (w.context > (int64_t{1} << 30)) return InvalidArgument("context must be at most 2^30 tokens");
  if (w.context <= 1) return InvalidArgument("context must be at least 2 tokens (prompt + output)");
  if (w.prompt < 0) return InvalidArgument("prompt length must not be negative");
  if (w.prompt_tokens() <= 0 || w.prompt_tokens() >= w.context)
    return InvalidArgument(fmt::format("prompt ({} tokens) must be positive and shorter than the "
                                       "context ({} tokens)", w.prompt_tokens(), w.context));
  if (w.prefill_chunk <= 0) return InvalidArgument("prefill chunk must be positive");
  if (w.kv_block <= 0) return InvalidArgument("KV block size must be positive");
  return Status::Ok();
}

}  // namespace frugal::planner
