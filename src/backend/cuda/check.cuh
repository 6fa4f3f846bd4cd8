// CUDA error checking: every failed CUDA runtime call or kernel launch becomes a frugal::Status
// naming the call, the file and the line. Nothing here aborts; callers propagate the Status.
#pragma once

#include <cuda_runtime.h>

#include "base/status.h"

namespace frugal::cuda {

// "cuda: cudaMalloc(&p, n) failed at file.cu:42: out of memory (cudaErrorMemoryAllocation)".
// Allocation failures map to kResourceExhausted, a missing device/driver to kUnsupported,
// everything else to kInternal.
Status cuda_error_status(cudaError_t err, const char* call, const char* file, int line);

}  // namespace frugal::cuda

// Evaluates a CUDA runtime call; on failure returns the Status from the enclosing function.
#define FRUGAL_CUDA_RETURN_IF_ERROR(call)                                                 \
  do {                                                                                    \
    const cudaError_t frugal_cuda_err_ = (call);                                          \
    if (frugal_cuda_err_ != cudaSuccess)                                                  \
      return ::frugal::cuda::cuda_error_status(frugal_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: turns a launch error (bad configuration, a sticky earlier fault)
// into a Status naming the kernel.
#define FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR(kernel_name)                                   \
  do {                                                                                    \
    const cudaError_t frugal_cuda_err_ = cudaGetLastError();                              \
    if (frugal_cuda_err_ != cudaSuccess)                                                  \
      return ::frugal::cuda::cuda_error_status(frugal_cuda_err_, "launch " kernel_name,   \
                                               __FILE__, __LINE__);                       \
  } while (0)
