// Host measurements for the `cpu` hardware entry (frugal plan --measure-host): memory read and
// copy bandwidth over a buffer much larger than the last-level cache, and the fp32 FMA peak.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/status.h"

namespace frugal::planner {

struct HostProbeParams {
  size_t buffer_bytes = size_t(1) << 30;  // per buffer (the copy uses two)
  int threads = 0;                        // 0: hardware_concurrency
  int repeats = 3;                        // best of
  bool measure_flops = true;
};

struct HostProbeResult {
  double read_gbs = 0;     // bytes read / s (10^9)
  double copy_gbs = 0;     // (bytes read + bytes written) / s
  double fma_tflops = 0;   // fp32 FMA peak over all threads (2 FLOPs per FMA lane)
  double memory_gb = 0;    // MemTotal from /proc/meminfo (10^9 bytes), 0 if unknown
  int threads = 0;
  size_t buffer_bytes = 0;
};

// Allocates the buffers (on transparent huge pages, as the CPU weights are placed: over 4 KiB
// pages a stream is bound by page walks on a VM; base/huge_pages.h), touches them, then times
// the loops (the read one is ReadProbe's). ResourceExhausted if the buffers
// cannot be allocated; InvalidArgument for a buffer under 1 MiB.
Result<HostProbeResult> probe_host(const HostProbeParams& params);

// The read half of probe_host with its buffer kept: allocated and written once, then measured as
// often as wanted (frugal bench probes around every decode run; allocating and zeroing 2 GiB for
// each probe cost more system time than the runs it brackets).
class ReadProbe {
 public:
  // ResourceExhausted if the buffer cannot be allocated; InvalidArgument under 1 MiB.
  static Result<ReadProbe> create(size_t buffer_bytes, bool huge_pages = true);
  // Best of `repeats` reads of the buffer by `threads` threads (equal 4 KiB-aligned slices), GB/s.
  Result<double> measure(int threads, int repeats = 3) const;
  size_t bytes() const { return bytes_; }
  const uint8_t* data() const { return static_cast<const uint8_t*>(buf_.get()); }

 private:
  std::shared_ptr<void> buf_;
  size_t bytes_ = 0;
};

// MemTotal in bytes, 0 if /proc/meminfo is unreadable.
uint64_t host_memory_bytes();

}  // namespace frugal::planner
