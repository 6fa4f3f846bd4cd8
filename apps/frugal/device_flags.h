// --device and --gpu-memory-utilization, shared by the subcommands that can run on the GPU, and
// the bridge to the CUDA runner (device_cuda.cpp: the real one when frugal is built with CUDA,
// else every entry says "frugal was built without CUDA").
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <span>
#include <string>

#include "base/status.h"
#include "kv_flags.h"
#include "model/cuda/bench_cuda.h"       // CUDA-free header (types only)
#include "model/cuda/generate_cuda.h"  // CUDA-free header (types only)
#include "model/cuda/perplexity_cuda.h"  // CUDA-free header (types only)
#include "model/model.h"

namespace frugal::cli {

struct DeviceFlags {
  std::string device = "cpu";
  double gpu_memory_utilization = 0.9;
  bool cuda() const { return device == "cuda"; }
};

inline void add_device_flags(CLI::App* sub, DeviceFlags& f) {
  sub->add_option("--device", f.device, "where the model runs: cpu or cuda")->capture_default_str();
  sub->add_option("--gpu-memory-utilization", f.gpu_memory_utilization,
                  "--device cuda: fraction of GPU memory for weights + workspace + KV pool "
                  "(the KV pool gets the rest)")
      ->capture_default_str();
}

// "frugal was built without CUDA (...)": what every --device cuda path says in a build without it.
Status cuda_not_built();

// The flags make sense together (before any model is loaded); for cuda also that a device is
// there: "frugal was built without CUDA" or "no CUDA device: <CUDA error text>".
Status check_device_flags(const DeviceFlags& f, const KvFlags& kv);

// generate() on the GPU (model/cuda/generate_cuda.h).
Result<cuda::CudaGenerateResult> generate_on_cuda(const Model& model,
                                                  std::span<const int32_t> prompt,
                                                  const cuda::CudaGenerateParams& params,
                                                  const std::function<bool(int32_t)>& on_token);

// `frugal bench --device cuda` (model/cuda/bench_cuda.h).
Result<cuda::CudaBenchResult> bench_on_cuda(const cuda::CudaBenchParams& params);

// `frugal perplexity --device cuda` (model/cuda/perplexity_cuda.h).
Result<cuda::CudaPerplexityResult> perplexity_on_cuda(const Model& model,
                                                      std::span<const int32_t> tokens,
                                                      const cuda::CudaPerplexityParams& params,
                                                      const PerplexityProgress& progress);

// `frugal run --device cuda`: streams the tokens to stdout (text when the model has a
// tokenizer, else ids) and the statistics to stderr; returns the exit code.
int stream_generate_cuda(const Model& model, std::span<const int32_t> prompt,
                         const cuda::CudaGenerateParams& params);

}  // namespace frugal::cli
