// One line naming the CUDA device the runner uses: "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)".
#pragma once

#include <string>

namespace frugal::cuda {

std::string device_line();

}  // namespace frugal::cuda
