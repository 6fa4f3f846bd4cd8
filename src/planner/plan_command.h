// `frugal plan` as a library call: the flags as a plain struct (the CLI binds its options to
// these fields; no CLI11 here), resolved into a PlanContext, searched, and rendered.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "planner/report.h"

namespace frugal::planner {

struct PlanArgs {
  // Model: a preset, a config.json / directory, a .gguf file; or explicit dims.
  std::string model;
  std::string dims;
  // Hardware.
  std::string gpu;           // table name, or "cpu"
  std::string hw_file;       // custom hardware JSON (replaces gpu)
  int gpus = 0;              // devices available (max tp searched); 0: 8 for GPUs, 1 for cpu
  double memory_gb = -1;     // overrides of the device's figures
  double bandwidth_gbs = -1;
  double tflops = -1;        // BF16 peak (GPU) or fp32 peak (cpu)
  bool measure_host = false; // probe this machine (the cpu device, and the offload host)
  double host_memory_gb = -1, host_bandwidth_gbs = -1, host_tflops = -1;
  // Workload.
  int64_t batch = 1;
  int64_t context = 0;       // 0: min(4096, the model's trained context)
  int64_t prompt = 0;        // 0: context / 2
  int64_t prefill_chunk = 2048;
  int64_t kv_block = 16;
  bool no_flash_attention = false;
  // Fixed choices (empty / negative: searched).
  std::string weights;       // a weight format, or "file" for a GGUF's own tensors
  std::string kv_dtype;
  std::string embed_dtype;
  int tp = 0;
  int offload = -1;
  // Assumptions.
  double overhead_gib = -1;
  double mem_util = 1.0;
  double eff_bandwidth = -1, eff_flops = -1, eff_link = -1;
  std::string min_quality;   // "A".."D"
  // Output.
  bool max_batch = false;
  bool max_context = false;
  bool explain = false;
  bool json = false;
  std::string svg;           // write charts to this file
  size_t top = 10;
  bool all = false;
  bool list_presets = false;
  bool list_hardware = false;
};

// Builds the report (no rendering). Errors: unknown model/hardware/format names, impossible
// values (zero heads, tp rules), missing config fields: each a Status with a clear message.
Result<PlanReport> make_plan(const PlanArgs& args);

// What `frugal plan` prints on stdout (and writes --svg). Same errors as make_plan, plus
// IoError when the SVG cannot be written.
Result<std::string> run_plan(const PlanArgs& args);

}  // namespace frugal::planner
