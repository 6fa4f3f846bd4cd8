// The inputs every planner computation shares: the model, the hardware, the workload, the
// deployment option being evaluated, and the stated assumptions (each overridable).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "planner/formats.h"
#include "planner/hardware.h"
#include "planner/model_spec.h"

namespace frugal::planner {

struct Workload {
  int64_t batch = 1;            // concurrent sequences
  int64_t context = 4096;       // prompt + output tokens per sequence
  int64_t prompt = 0;           // prompt tokens per sequence; 0 = context / 2
  int64_t prefill_chunk = 2048; // tokens per prefill step (chunked prefill)
  int64_t kv_block = 16;        // tokens per KV page; every sequence's KV rounds up to pages
  bool flash_attention = true;  // false: the prefill materialises heads x chunk x keys scores

  int64_t prompt_tokens() const { return prompt > 0 ? prompt : context / 2; }
  int64_t output_tokens() const { return context - prompt_tokens(); }
};

// Stated assumptions; negative values mean "use the default" (documented in docs/PLANNER.md).
struct Assumptions {
  double overhead_gib = -1;  // runtime overhead per device: default 1.0 GiB (GPU), 0.25 (CPU)
  double mem_util = 1.0;     // fraction of device memory the engine may use
  int act_bytes = 2;         // bytes per activation element (16-bit)
  double eff_bandwidth = -1; // fraction of peak bandwidth reached; default: hardware's
  double eff_flops = -1;     // fraction of peak FLOP/s reached; default: hardware's
  double eff_link = -1;      // fraction of link bandwidth reached; default: hardware's
  double host_link_gbs = 25; // device <-> host copy bandwidth for offloaded layers (PCIe 4.0)
};

// One way to deploy the model: the option the search enumerates.
struct Deployment {
  WeightFormat weights = WeightFormat::kBF16;     // attention and FFN matrices
  std::optional<WeightFormat> embeddings;         // embedding + LM head; default 16-bit
  bool file_weights = false;  // use the bytes of each tensor as stored in the model file
  KvFormat kv = KvFormat::kF16;
  int tp = 1;                 // tensor-parallel degree (devices)
  int offload_layers = 0;     // decoder layers kept in host memory and run by the host CPU

  WeightFormat embedding_format() const;
  std::string label() const;  // "int4 w, f16 kv, tp 2, 10 layers on host"
};

// Weight bytes per tensor role as stored in a model file (GGUF): exact, whatever the mix.
struct FileWeights {
  std::array<uint64_t, (size_t)TensorRole::kCount> bytes{};
  std::array<uint64_t, (size_t)TensorRole::kCount> elems{};
  std::array<uint64_t, (size_t)TensorRole::kCount> quantized_elems{};
  std::string description;  // "Q4_1 x 210, Q8_0 x 1, F32 x 61"
  uint64_t total_bytes() const {
    uint64_t t = 0;
    for (uint64_t b : bytes) t += b;
    return t;
  }
};

struct PlanContext {
  ModelSpec model;
  std::optional<FileWeights> file;  // set when the model came from a GGUF file
  Hardware device;
  Hardware host;                    // runs offloaded layers
  Workload workload;
  Assumptions assume;
  int max_devices = 1;              // upper bound on tp for the option search

  double eff_bandwidth() const { return assume.eff_bandwidth > 0 ? assume.eff_bandwidth : device.eff_bandwidth; }
  double eff_flops() const { return assume.eff_flops > 0 ? assume.eff_flops : device.eff_flops; }
  double eff_link() const { return assume.eff_link > 0 ? assume.eff_link : device.eff_link; }
  double overhead_bytes() const;
};

// One formula of --explain: what, the formula, the numbers substituted, the result.
struct ExplainLine {
  std::string topic;
  std::string formula;
  std::string substituted;
  std::string result;
};
using ExplainLog = std::vector<ExplainLine>;

// Checks the workload: positive batch, context, chunk, block; prompt < context.
Status validate_workload(const Workload& w);

}  // namespace frugal::planner
