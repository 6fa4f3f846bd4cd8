// `frugal bench --device cuda`: the GPU flavour of cmd_bench.cpp (model/cuda/bench_cuda.h does
// the measuring): -p as a list of prompt lengths, -b batch sizes and --ctx starting contexts for
// the decode table, --gpu-memory-utilization for the planner's check of the largest one.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "device_flags.h"

namespace frugal::cli {

// The flags only the CUDA bench reads (registered by add_bench_cuda_flags).
struct BenchCudaFlags {
  DeviceFlags device;
  std::vector<int64_t> batches{1, 8, 32};
  std::vector<int64_t> contexts{1024, 4096};
};

void add_bench_cuda_flags(CLI::App* sub, BenchCudaFlags& f);

// What both benches share (cmd_bench.cpp's options).
struct BenchCudaArgs {
  std::string model, dummy;
  int dummy_layers = 0;
  std::vector<int64_t> prompts;
  int64_t n_gen = 128;
  int reps = 3;
  uint64_t seed = 1;
  bool json = false;
};

// Errors naming the flags that do not apply to the chosen device: on cuda the CPU-only ones
// (--formats, -t, --bw-mib, --mem-limit, --decode-act, --cpu-isa, --act-quant), on cpu -b,
// --ctx, --gpu-memory-utilization and more than one -p value.
Status check_bench_flag_mix(const CLI::App& sub, bool cuda, size_t n_prompts);

// Runs the bench on the GPU and prints its table (or JSON); returns the exit code.
int run_bench_cuda(const BenchCudaArgs& a, const BenchCudaFlags& f);

}  // namespace frugal::cli
