// BF16 GEMM through cuBLAS for prefill and batched decode: Y[m, n] = X[m, k] * W[n, k]^T with
// W bf16 (a weight, rows = output features), X bf16 activations, Y float; float accumulation.
// cuBLAS status codes become Status values naming the call.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "base/status.h"

struct cublasContext;

namespace frugal::cuda {

// One cuBLAS handle bound to a stream, with a fixed workspace (so calls can be captured into a
// CUDA graph without cuBLAS allocating). Move-only; destroyed with the object.
class CublasHandle {
 public:
  // workspace: device memory the caller keeps alive (>= 4 MiB recommended; may be null).
  static Result<CublasHandle> create(cudaStream_t stream, void* workspace, size_t workspace_bytes);
  CublasHandle() = default;
  ~CublasHandle();
  CublasHandle(CublasHandle&& o) noexcept;
  CublasHandle& operator=(CublasHandle&& o) noexcept;
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;

  cublasContext* get() const { return h_; }

 private:
  cublasContext* h_ = nullptr;
};

struct GemmParams {
  const uint16_t* w = nullptr;  // bf16 [n, k]
  const uint16_t* x = nullptr;  // bf16 [m, k]
  float* y = nullptr;           // float [m, n]
  int64_t m = 0, n = 0, k = 0;
};
Status gemm_bf16(const CublasHandle& h, const GemmParams& p);

}  // namespace frugal::cuda
