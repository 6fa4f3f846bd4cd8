// Memory for long sequential streams (weights, bandwidth probes) on transparent huge pages.
//
// On this project's machines a stream over 4 KiB pages is bound by page walks, not by DRAM: one
// thread read 6.5-11.4 GB/s over 4 KiB pages and 13.6-15.6 GB/s over 2 MiB pages of the same
// buffer (the dev VM, 2026-11-30, bench/read_pages_bench.cpp; a VM's nested page walks are
// expensive, and how expensive moves with the host's load). So the CPU weights and the probe
// that measures the roofline's bandwidth both live on huge pages where the kernel allows it.
//
// The advice is best effort: with THP "never" (or a kernel without it) the buffer is an ordinary
// 2 MiB-aligned allocation, and huge_pages_resident() tells what the kernel actually gave.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

namespace frugal {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// `bytes` (rounded up to 2 MiB) aligned to 2 MiB and advised MADV_HUGEPAGE when `huge` is true;
// else 64-byte aligned. Uninitialized. Null when the allocation fails.
std::shared_ptr<void> allocate_stream_buffer(size_t bytes, bool huge);

// HugePageAllocator's large arrays: `bytes` rounded up to 2 MiB, 2 MiB-aligned, advised; free()
// releases it. Null when the allocation fails.
void* allocate_huge_array(size_t bytes);

// A std::allocator that puts arrays of 2 MiB or more on huge pages (2 MiB-aligned, advised
// MADV_HUGEPAGE; best effort as above) and smaller ones on the heap: for buffers that are
// resized, such as the int8 activations of a prefill GEMM, which every weight panel reads again.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePageBytes) return std::allocator<T>().allocate(n);
    void* p = allocate_huge_array(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n * sizeof(T) < kHugePageBytes) std::allocator<T>().deallocate(p, n);
    else std::free(p);
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

// The anonymous memory of this process backed by huge pages (AnonHugePages of
// /proc/self/smaps_rollup), in bytes; 0 when unknown.
size_t huge_pages_resident();

// The THP mode the kernel runs ("always", "madvise", "never"; "unavailable" without THP).
std::string transparent_huge_pages_mode();

}  // namespace frugal
