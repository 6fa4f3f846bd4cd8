// cuBLAS BF16 GEMM wrapper (see gemm.cuh).
#include <string>
#include <utility>

#include "backend/cuda/cublas_lib.h"
#include "backend/cuda/gemm.cuh"

namespace frugal::cuda {

namespace {

Status cublas_status(const CublasLib& lib, cublasStatus_t s, const char* call) {
  return Internal(std::string("cublas: ") + call + " failed: " + lib.status_string(s));
}

// expr calls through `lib` (a CublasLib*).
#define FRUGAL_CUBLAS_RETURN_IF_ERROR(expr)                      \
  do {                                                           \
    const cublasStatus_t frugal_cublas_s_ = (expr);              \
    if (frugal_cublas_s_ != CUBLAS_STATUS_SUCCESS)               \
      return cublas_status(*lib, frugal_cublas_s_, #expr);       \
  } while (0)

// Only reached with a handle, which only an opened library made.
void destroy_handle(cublasContext* h) {
  if (!h) return;
  const Result<const CublasLib*> lib = cublas_lib();
  if (lib.ok()) (void)(*lib)->destroy(h);
}

}  // namespace

Result<CublasHandle> CublasHandle::create(cudaStream_t stream, void* workspace,
                                          size_t workspace_bytes) {
  FRUGAL_ASSIGN_OR_RETURN(const CublasLib* lib, cublas_lib());
  CublasHandle h;
  FRUGAL_CUBLAS_RETURN_IF_ERROR(lib->create(&h.h_));
  FRUGAL_CUBLAS_RETURN_IF_ERROR(lib->set_stream(h.h_, stream));
  if (workspace && workspace_bytes)
    FRUGAL_CUBLAS_RETURN_IF_ERROR(lib->set_workspace(h.h_, workspace, workspace_bytes));
  return Result<CublasHandle>(std::move(h));
}

CublasHandle::~CublasHandle() { destroy_handle(h_); }

CublasHandle::CublasHandle(CublasHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}

CublasHandle& CublasHandle::operator=(CublasHandle&& o) noexcept {
  if (this != &o) {
    destroy_handle(h_);
    h_ = std::exchange(o.h_, nullptr);
  }
  return *this;
}

Status gemm_bf16(const CublasHandle& h, const GemmParams& p) {
  if (!h.get()) return InvalidArgument("cuda::gemm_bf16: no cuBLAS handle");
  if (!p.w || !p.x || !p.y) return InvalidArgument("cuda::gemm_bf16: null pointer");
  if (p.m < 1 || p.n < 1 || p.k < 1 || p.m > 0x7fffffff || p.n > 0x7fffffff || p.k > 0x7fffffff)
    return InvalidArgument("cuda::gemm_bf16: sizes m " + std::to_string(p.m) + ", n " +
                           std::to_string(p.n) + ", k " + std::to_string(p.k));
  FRUGAL_ASSIGN_OR_RETURN(const CublasLib* lib, cublas_lib());
  const float alpha = 1.0f, beta = 0.0f;
  // Column-major view: Y^T [n, m] = op_T(W as col-major [k, n]) * X^T (col-major [k, m]).
  FRUGAL_CUBLAS_RETURN_IF_ERROR(lib->gemm_ex(
      h.get(), CUBLAS_OP_T, CUBLAS_OP_N, (int)p.n, (int)p.m, (int)p.k, &alpha, p.w, CUDA_R_16BF,
      (int)p.k, p.x, CUDA_R_16BF, (int)p.k, &beta, p.y, CUDA_R_32F, (int)p.n, CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
  return Status::Ok();
}

}  // namespace frugal::cuda
