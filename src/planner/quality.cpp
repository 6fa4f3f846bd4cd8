#include "planner/quality.h"

namespace frugal::planner {

QualityNote weight_quality(WeightFormat f) {
  switch (f) {
    case WeightFormat::kF32:
    case WeightFormat::kF16:
    case WeightFormat::kBF16: return {'A', 0.0, "reference"};
    case WeightFormat::kQ8_0:
      return {'A', 0.004, "llama.cpp, Llama-2-7B, ctx 512 (REFERENCES.md)"};
    case WeightFormat::kInt8:
      return {'A', 0.01, "typical for W8A16 per-channel RTN (literature; not measured by frugal)"};
    case WeightFormat::kFP8:
      return {'A', 0.02, "typical for FP8 E4M3 per-tensor (literature; not measured by frugal)"};
    case WeightFormat::kQ6_K:
      return {'A', 0.01, "typical for llama.cpp Q6_K on 7B models (not measured by frugal)"};
    case WeightFormat::kQ4_K:
      return {'B', 0.083, "llama.cpp Q4_K_M, Llama-2-7B, ctx 512 (REFERENCES.md)"};
    case WeightFormat::kInt4Gptq:
      return {'C', 0.13, "AWQ W4 g128, Llama-2-7B 5.47 -> 5.60 (AWQ paper, REFERENCES.md)"};
    case WeightFormat::kInt4:
    case WeightFormat::kInt4Asym:
      return {'C', 0.26, "RTN W4 g128, Llama-2-7B 5.47 -> 5.73 (AWQ paper, REFERENCES.md)"};
    case WeightFormat::kQ4_1:
      return {'C', 0.19, "typical for llama.cpp Q4_1 on LLaMA-7B (not measured by frugal)"};
    case WeightFormat::kQ4_0:
      return {'C', 0.25, "typical for llama.cpp Q4_0 on LLaMA-7B (not measured by frugal)"};
    case WeightFormat::kCount: break;
  }
  return {'D', -1, "unknown"};
}

QualityNote kv_quality(KvFormat f) {
  switch (f) {
    case KvFormat::kF32:
    case KvFormat::kF16:
    case KvFormat::kBF16: return {'A', 0.0, "reference"};
    case KvFormat::kQ8_0:
      return {'A', 0.002, "llama.cpp q8_0 K and V: KLD ~0.001 (REFERENCES.md)"};
    case KvFormat::kInt8:
    case KvFormat::kFP8:
      return {'A', 0.01, "typical for 8-bit KV caches (literature; not measured by frugal)"};
    case KvFormat::kInt4:
      return {'B', 0.05, "typical for 4-bit grouped KV (KIVI-style; not measured by frugal)"};
    case KvFormat::kQ4_0:
      return {'B', 0.08, "typical for llama.cpp q4_0 KV (not measured by frugal)"};
    case KvFormat::kCount: break;
  }
  return {'D', -1, "unknown"};
}

char combined_tier(char a, char b) { return a > b ? a : b; }

}  // namespace frugal::planner
