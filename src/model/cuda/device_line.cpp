#include "model/cuda/device_line.h"

#include <cstdio>

#include "backend/cuda/memory.cuh"

namespace frugal::cuda {

std::string device_line() {
  Result<DeviceInfo> info = device_info(0);
  if (!info.ok()) return "CUDA device 0";
  char buf[384];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, %.1f GiB)", info->name, info->sm_major,
                info->sm_minor, info->num_sms, (double)info->total_bytes / (1 << 30));
  return buf;
}

}  // namespace frugal::cuda
