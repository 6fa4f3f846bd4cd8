// cuBLAS, opened with dlopen on first use instead of linked into the binary.
//
// Linking libcublas costs a process ~150 MiB of resident memory before main, whether or not it
// ever touches a GPU: the dynamic loader maps libcublasLt and writes its relocations (measured
// 2026-11-30 on the dev VM with CUDA 13.0: the linked `frugal` stopped at main held RssAnon
// 95 MB + RssFile 63 MB; `frugal --help` peaked at 218 MiB, 7 MiB once cuBLAS was opened here).
// `frugal run` on the CPU paid that on top of its 92 MB of weights. Opened here, only
// `--device cuda`, the GPU benches and the GPU tests load it.
#pragma once

#include <cublas_v2.h>

#include "base/status.h"

namespace frugal::cuda {

// The entry points frugal uses, with cuBLAS's own signatures (the _v2 symbols cublas_v2.h maps
// the plain names to).
struct CublasLib {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
  // The exported cublasGemmEx (a C++ inline overload taking cudaDataType as the compute type
  // also exists, so the signature is spelled out).
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*,
                            cudaDataType, int, const void*, void*, cudaDataType, int,
                            cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

// Opens libcublas.so.<major of the headers built against> once per process (thread-safe; kept
// open): first by name (LD_LIBRARY_PATH, the binary's run path, ld.so.cache), then in the CUDA
// toolkit's library directory found at build time. Unavailable, naming the file and the
// loader's message, when it cannot be opened or lacks an entry point.
Result<const CublasLib*> cublas_lib();

}  // namespace frugal::cuda
