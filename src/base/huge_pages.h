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
#include <memory>
#include <string>

namespace frugal {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// `bytes` (rounded up to 2 MiB) aligned to 2 MiB and advised MADV_HUGEPAGE when `huge` is true;
// else 64-byte aligned. Uninitialized. Null when the allocation fails.
std::shared_ptr<void> allocate_stream_buffer(size_t bytes, bool huge);

// The anonymous memory of this process backed by huge pages (AnonHugePages of
// /proc/self/smaps_rollup), in bytes; 0 when unknown.
size_t huge_pages_resident();

// The THP mode the kernel runs ("always", "madvise", "never"; "unavailable" without THP).
std::string transparent_huge_pages_mode();

}  // namespace frugal
