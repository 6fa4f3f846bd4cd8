// Error conversion, device queries, DeviceBuffer and DeviceArena.
#include <string>
#include <utility>

#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"

namespace frugal::cuda {

Status cuda_error_status(cudaError_t err, const char* call, const char* file, int line) {
  std::string msg = "cuda: ";
  msg += call;
  msg += " failed at ";
  msg += file;
  msg += ":" + std::to_string(line) + ": ";
  msg += cudaGetErrorString(err);
  msg += " (";
  msg += cudaGetErrorName(err);
  msg += ")";
  switch (err) {
    case cudaErrorMemoryAllocation:
      return ResourceExhausted(std::move(msg));
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorNoKernelImageForDevice:
      return Unsupported(std::move(msg));
    case cudaErrorInvalidValue:
    case cudaErrorInvalidConfiguration:
      return InvalidArgument(std::move(msg));
    default:
      return Internal(std::move(msg));
  }
}

namespace {
thread_local bool g_programmatic_launch = false;
}  // namespace

void set_programmatic_launch(bool on) { g_programmatic_launch = on; }
bool programmatic_launch() { return g_programmatic_launch; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the non-sticky error so later calls start clean
    return 0;
  }
  return n;
}

Result<DeviceInfo> device_info(int ordinal) {
  cudaDeviceProp prop{};
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, ordinal));
  DeviceInfo info;
  info.ordinal = ordinal;
  for (size_t i = 0; i + 1 < sizeof(info.name) && prop.name[i]; ++i) info.name[i] = prop.name[i];
  info.sm_major = prop.major;
  info.sm_minor = prop.minor;
  info.num_sms = prop.multiProcessorCount;
  info.l2_bytes = (size_t)prop.l2CacheSize;
  int current = 0;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaGetDevice(&current));
  if (current == ordinal) {
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
  } else {
    info.total_bytes = prop.totalGlobalMem;
  }
  return info;
}

Result<int> current_num_sms() {
  static thread_local int cached_dev = -1, cached_sms = 0;
  int dev = 0;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  if (dev != cached_dev) {
    int sms = 0;
    FRUGAL_CUDA_RETURN_IF_ERROR(
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cached_dev = dev;
    cached_sms = sms;
  }
  return cached_sms;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) (void)cudaFree(ptr_);  // a failure here (sticky context error) has nowhere to go
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) (void)cudaFree(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

Result<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  DeviceBuffer b;
  if (bytes == 0) return Result<DeviceBuffer>(std::move(b));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    Status st = cuda_error_status(err, "cudaMalloc", __FILE__, __LINE__);
    return Status(st.code(), st.message() + " (requested " + std::to_string(bytes) + " bytes)");
  }
  b.ptr_ = p;
  b.bytes_ = bytes;
  return Result<DeviceBuffer>(std::move(b));
}

Status DeviceBuffer::upload(const void* host, size_t bytes, size_t offset) {
  if (offset > bytes_ || bytes > bytes_ - offset)
    return OutOfRange("DeviceBuffer::upload: " + std::to_string(bytes) + " bytes at offset " +
                      std::to_string(offset) + " exceed the buffer's " + std::to_string(bytes_));
  if (bytes == 0) return Status::Ok();
  FRUGAL_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(static_cast<char*>(ptr_) + offset, host, bytes, cudaMemcpyHostToDevice));
  // From pageable memory cudaMemcpy may return once the bytes are staged, before the DMA lands;
  // work on a non-blocking stream is not ordered after it. Wait, so the data is there for any
  // stream (uploads are not on a hot path).
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return Status::Ok();
}

Status DeviceBuffer::download(void* host, size_t bytes, size_t offset) const {
  if (offset > bytes_ || bytes > bytes_ - offset)
    return OutOfRange("DeviceBuffer::download: " + std::to_string(bytes) + " bytes at offset " +
                      std::to_string(offset) + " exceed the buffer's " + std::to_string(bytes_));
  if (bytes == 0) return Status::Ok();
  FRUGAL_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(host, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost));
  return Status::Ok();
}

Status DeviceBuffer::fill_bytes(uint8_t value) {
  if (bytes_ == 0) return Status::Ok();
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemset(ptr_, value, bytes_));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());  // same reason as upload
  return Status::Ok();
}

Result<DeviceArena> DeviceArena::create(size_t capacity_bytes) {
  DeviceArena a;
  FRUGAL_ASSIGN_OR_RETURN(a.buf_, DeviceBuffer::allocate(capacity_bytes));
  return Result<DeviceArena>(std::move(a));
}

Result<void*> DeviceArena::take(size_t bytes, size_t align) {
  if (align == 0 || (align & (align - 1)) != 0)
    return InvalidArgument("DeviceArena::take: alignment " + std::to_string(align) +
                           " is not a power of two");
  const uintptr_t base = reinterpret_cast<uintptr_t>(buf_.data());
  const uintptr_t start = (base + used_ + (align - 1)) & ~(uintptr_t)(align - 1);
  const size_t offset = (size_t)(start - base);
  if (offset > buf_.size() || bytes > buf_.size() - offset)
    return ResourceExhausted("DeviceArena: " + std::to_string(bytes) + " bytes requested, " +
                             std::to_string(offset > buf_.size() ? 0 : buf_.size() - offset) +
                             " of " + std::to_string(buf_.size()) + " remain");
  used_ = offset + bytes;
  return reinterpret_cast<void*>(start);
}

}  // namespace frugal::cuda
