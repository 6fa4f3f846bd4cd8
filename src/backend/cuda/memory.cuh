// Device memory: a move-only owning buffer, and an arena that takes one allocation up front and
// hands out aligned sub-ranges (weights, then workspace, then the KV pool) without further
// cudaMalloc calls. All failures are Status values.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "base/status.h"

namespace frugal::cuda {

// Number of visible CUDA devices; 0 when there is no driver or no device (never an error).
int device_count();

struct DeviceInfo {
  int ordinal = 0;
  char name[256] = {};
  int sm_major = 0, sm_minor = 0;
  int num_sms = 0;
  size_t total_bytes = 0, free_bytes = 0;
  size_t l2_bytes = 0;
};
Result<DeviceInfo> device_info(int ordinal = 0);

// Multiprocessor count of the current device (cached per device); 132 on an H200 SXM.
Result<int> current_num_sms();

// One cudaMalloc'ed range, freed on destruction. Empty (data() == nullptr) after a move.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // bytes == 0 gives an empty buffer. Out of memory -> kResourceExhausted naming the size.
  static Result<DeviceBuffer> allocate(size_t bytes);

  void* data() const { return ptr_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t size() const { return bytes_; }

  // Synchronous host<->device copies of [offset, offset + bytes); out of range -> OutOfRange.
  Status upload(const void* host, size_t bytes, size_t offset = 0);
  Status download(void* host, size_t bytes, size_t offset = 0) const;
  // Fills the whole buffer with one byte value (tests poison outputs with 0xff = NaN).
  Status fill_bytes(uint8_t value);

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Bump allocator over one DeviceBuffer. take() never calls cudaMalloc; it fails with
// kResourceExhausted (naming requested and remaining bytes) when the arena is full.
class DeviceArena {
 public:
  static Result<DeviceArena> create(size_t capacity_bytes);

  // A sub-range of `bytes`, its start aligned to `align` (a power of two, >= 1).
  Result<void*> take(size_t bytes, size_t align = 256);
  template <class T>
  Result<T*> take_n(size_t count, size_t align = 256) {
    FRUGAL_ASSIGN_OR_RETURN(void* p, take(count * sizeof(T), align));
    return static_cast<T*>(p);
  }
  void reset() { used_ = 0; }  // forget every sub-range (their pointers become invalid)

  size_t capacity() const { return buf_.size(); }
  size_t used() const { return used_; }
  size_t remaining() const { return buf_.size() - used_; }

 private:
  DeviceBuffer buf_;
  size_t used_ = 0;
};

}  // namespace frugal::cuda
