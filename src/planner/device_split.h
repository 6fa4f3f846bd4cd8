// The split of one device's memory budget between weights, workspace and the KV pool (issue 7):
// the single source of "how many KV blocks fit" for a runner that takes one arena up front
// (model/cuda/llama_cuda.cuh). The budget is the device's memory times the utilization, less
// what the device already holds before the arena is taken (CUDA context, other processes), as
// vLLM's --gpu-memory-utilization; weights come first, then the workspace, then the KV pool
// gets whole blocks of the rest. Pure arithmetic: the runner measures its own byte counts
// (weights as uploaded, workspace for its max batch / prefill chunk) and passes them in.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace frugal::planner {

struct DeviceSplitInput {
  uint64_t device_total = 0;      // device memory in bytes (as the driver reports it)
  uint64_t device_in_use = 0;     // bytes already taken before the arena (context, others)
  double utilization = 0.9;       // fraction of device_total this process may hold, (0, 1]
  uint64_t weight_bytes = 0;      // weights as uploaded (e.g. bf16), alignment included
  uint64_t workspace_bytes = 0;   // activations and scratch for the max batch / prefill chunk
  uint64_t kv_block_bytes = 0;    // K + V of one block of block_size positions, all layers
  int block_size = 16;            // positions per KV block
  int64_t min_kv_blocks = 1;      // the runner needs at least this many (else: doesn't fit)
  int64_t max_kv_blocks = 0;      // cap on the pool (0: no cap, the pool gets all the rest)
};

struct DeviceSplit {
  uint64_t budget = 0;            // device_total * utilization - device_in_use
  uint64_t weights = 0;
  uint64_t workspace = 0;
  int64_t kv_blocks = 0;
  int64_t kv_tokens = 0;          // kv_blocks * block_size
  uint64_t kv_bytes = 0;          // kv_blocks * kv_block_bytes
  uint64_t unused = 0;            // budget left over (less than one block, or above the cap)
  // "weights 269 MB + workspace 40 MB + KV 123.4 GB (7712 blocks of 16 = 123392 tokens) of a
  // 127.5 GB budget (0.90 x 141.6 GB - 0.5 GB in use)"
  std::string summary(const DeviceSplitInput& in) const;
};

// InvalidArgument for a utilization outside (0, 1], block_size < 1, kv_block_bytes 0 or
// min_kv_blocks < 1; ResourceExhausted when weights + workspace + min_kv_blocks blocks exceed
// the budget, naming every term and the shortfall in bytes.
Result<DeviceSplit> split_device_memory(const DeviceSplitInput& in);

}  // namespace frugal::planner
