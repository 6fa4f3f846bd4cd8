// Hardware table: dense peak figures only (sparse "2:4" figures are twice these and never used).
// Memory, bandwidth and the tensor peaks are exactly those of REFERENCES.md; interconnect and
// fp32 vector figures come from the vendors' datasheets (docs/PLANNER.md lists the sources).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "planner/formats.h"

namespace frugal::planner {

struct Hardware {
  std::string name;          // "a100-40gb"
  std::string display;       // "NVIDIA A100 40GB SXM"
  bool is_cpu = false;
  double memory_gb = 0;      // capacity in 10^9 bytes (vendor GB; nvidia-smi shows at least this)
  double bandwidth_gbs = 0;  // peak memory bandwidth, 10^9 B/s
  double bf16_tflops = 0;    // dense BF16/FP16 tensor peak
  double fp8_tflops = 0;     // dense FP8 tensor peak (0: no FP8 tensor cores)
  double int8_tops = 0;      // dense INT8 tensor peak
  double fp32_tflops = 0;    // fp32 vector peak (non-tensor): dequantization runs here
  double link_gbs = 0;       // device-to-device bandwidth per device, per direction, 10^9 B/s
  std::string link;          // "NVLink 3 (600 GB/s total)", "PCIe 4.0 x16"
  double link_latency_us = 0;  // per ring step of an all-reduce
  // Default efficiencies: fraction of peak a well-tuned kernel reaches (stated assumptions).
  // Bandwidth: a chain of Llama-3.1-8B-shaped bf16 matmuls at batch 1 (PyTorch/cuBLAS, CUDA
  // graphs) streamed weights at 0.66 of the H200's peak; a plain copy reaches 0.88.
  double eff_bandwidth = 0.70;
  double eff_flops = 0.75;
  double eff_link = 0.75;
  std::string source;        // where the numbers come from ("REFERENCES.md", "measured", "user")

  uint64_t memory_bytes() const { return (uint64_t)(memory_gb * 1e9); }
  // Matmul peak in FLOP/s for a compute path (FP8 falls back to BF16 where absent).
  double peak_flops(ComputePath p) const;
  // "40 GB, 1555 GB/s, 312 TFLOPS bf16"
  std::string summary() const;
};

const std::vector<Hardware>& hardware_table();

// By name or alias ("a100", "A100-40GB", "h100", "4090"); NotFound suggests the closest names.
Result<Hardware> find_hardware(std::string_view name);

// The host CPU as a device. `bandwidth_gbs` is a measured or user-given read bandwidth (used
// as achieved: efficiency 1); `tflops` fp32 peak (measured FMA rate or given); memory in GB.
Hardware cpu_hardware(double memory_gb, double bandwidth_gbs, double tflops, std::string source);

// Custom hardware from a JSON object (or the first element of an array) with fields
//   name, memory_gb, bandwidth_gbs, bf16_tflops   (required: NotFound naming the field)
//   fp8_tflops, int8_tops, fp32_tflops, link_gbs, link, link_latency_us, is_cpu,
//   eff_bandwidth, eff_flops, eff_link            (optional)
Result<Hardware> hardware_from_json_text(const std::string& text, const std::string& origin);
Result<Hardware> hardware_from_json_file(const std::string& path);

// Checks a hardware entry: positive memory, bandwidth, BF16 peak; efficiencies in (0, 1].
Status validate_hardware(const Hardware& hw);

}  // namespace frugal::planner
