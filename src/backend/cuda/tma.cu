// Host side of tma.cuh: cuTensorMapEncodeTiled through the runtime's driver entry point.
#include "backend/cuda/tma.cuh"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <mutex>
#include <string>

namespace frugal::cuda::tma {

namespace {

PFN_cuTensorMapEncodeTiled_v12000 g_encode = nullptr;
cudaError_t g_lookup_err = cudaSuccess;
cudaDriverEntryPointQueryResult g_lookup_q = cudaDriverEntryPointSuccess;

void lookup() {
  void* fn = nullptr;
  g_lookup_err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                  cudaEnableDefault, &g_lookup_q);
  if (g_lookup_err == cudaSuccess && g_lookup_q == cudaDriverEntryPointSuccess)
    g_encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
}

}  // namespace

namespace {

// Rank-N encode behind both public entry points.
Status encode_bf16_sw128(int rank, const void* base, const uint64_t* dims_in,
                         const uint64_t* strides_in, const uint32_t* box_in, CUtensorMap* out) {
  static std::once_flag once;
  std::call_once(once, lookup);
  if (!g_encode)
    return Unsupported(std::string("tma: no cuTensorMapEncodeTiled in the driver (") +
                       cudaGetErrorString(g_lookup_err) + ", query result " +
                       std::to_string((int)g_lookup_q) + ")");
  if (reinterpret_cast<uintptr_t>(base) % 16)
    return InvalidArgument("tma: the global address must be 16-byte aligned");
  for (int i = 0; i < rank - 1; ++i)
    if (strides_in[i] % 16 || strides_in[i] >= (1ull << 40))
      return InvalidArgument("tma: strides must be multiples of 16 bytes below 2^40");
  if (box_in[0] * 2 > 128)
    return InvalidArgument("tma: the 128-byte swizzle takes at most 64 bf16 per box row");
  for (int i = 0; i < rank; ++i)
    if (box_in[i] < 1 || box_in[i] > 256 || dims_in[i] < 1 || dims_in[i] > (1ull << 32))
      return InvalidArgument("tma: box dims 1..256, tensor dims 1..2^32");
  cuuint64_t dims[5], strides[4];
  cuuint32_t box[5], estr[5] = {1, 1, 1, 1, 1};
  for (int i = 0; i < rank; ++i) {
    dims[i] = dims_in[i];
    box[i] = box_in[i];
  }
  for (int i = 0; i < rank - 1; ++i) strides[i] = strides_in[i];
  const CUresult r = g_encode(out, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, (cuuint32_t)rank,
                              const_cast<void*>(base), dims, strides, box, estr,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    // Unsupported, not Internal: a driver may refuse a map this one accepts (the grouped
    // 5-D map's strides are not increasing); callers fall back to another kernel on it.
    return Unsupported("tma: cuTensorMapEncodeTiled failed (CUresult " + std::to_string((int)r) +
                       ", rank " + std::to_string(rank) + ")");
  return Status::Ok();
}

}  // namespace

Status encode_bf16_4d_sw128(const Map4dParams& p, CUtensorMap* out) {
  return encode_bf16_sw128(4, p.base, p.dims, p.strides_bytes, p.box, out);
}

Status encode_bf16_5d_sw128(const Map5dParams& p, CUtensorMap* out) {
  return encode_bf16_sw128(5, p.base, p.dims, p.strides_bytes, p.box, out);
}

}  // namespace frugal::cuda::tma
