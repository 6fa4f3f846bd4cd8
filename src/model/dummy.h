// Dummy models: the real architecture of a named preset with random weights (vLLM's
// load_format="dummy"), to measure speed and memory at real scale without the checkpoint.
// Speed does not depend on the values, but timing on zeros would flatter (zero pages, early
// exits), so matrices are uniform in [-a, a] with a = 0.02*sqrt(3) (std 0.02, the usual init
// scale) from a fixed seed, each row seeded by (seed, tensor, row) so the result does not depend
// on the thread count; norm weights are 1. No tokenizer: benchmarks feed token ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/config.h"
#include "model/model.h"
#include "tensor/dtype.h"

namespace frugal {

// The config of a Llama-family planner preset ("llama-3.2-1b", "llama-3.1-8b", "smollm2-135m",
// ...; any spelling find_preset accepts) or of "tiny" (2 layers, dim 128, 4/2 heads, FFN 256,
// vocab 512: for tests). NotFound with close names for an unknown one; Unsupported for a preset
// that is not a plain Llama decoder (MoE, biases, GELU MLP, LayerNorm, head_dim != dim/heads).
Result<ModelConfig> dummy_config(std::string_view arch);

// Names accepted by dummy_config that are Llama-family: "tiny" and the matching presets.
std::vector<std::string> dummy_arch_names();

struct DummyModelParams {
  DType dtype = DType::Q8_0;  // every matrix (embedding included); check_dtype_fits applies
  uint64_t seed = 1;
};

// Allocates weight_bytes_for(c, dtype) bytes (owned_weights.h) and fills them in parallel.
Result<Model> make_dummy_model(const ModelConfig& c, const DummyModelParams& p, ThreadPool& pool);

}  // namespace frugal
