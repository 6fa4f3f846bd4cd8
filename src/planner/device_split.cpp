#include "planner/device_split.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "planner/units.h"

namespace frugal::planner {

namespace {

std::string bytes_exact(uint64_t b) { return fmt::format("{} bytes ({})", b, fmt_bytes((double)b)); }

}  // namespace

std::string DeviceSplit::summary(const DeviceSplitInput& in) const {
  return fmt::format(
      "weights {} + workspace {} + KV {} ({} blocks of {} = {} tokens) of a {} budget "
      "({:.2f} x {} - {} in use)",
      fmt_bytes((double)weights), fmt_bytes((double)workspace), fmt_bytes((double)kv_bytes),
      kv_blocks, in.block_size, kv_tokens, fmt_bytes((double)budget), in.utilization,
      fmt_bytes((double)in.device_total), fmt_bytes((double)in.device_in_use));
}

Result<DeviceSplit> split_device_memory(const DeviceSplitInput& in) {
  if (!(in.utilization > 0.0 && in.utilization <= 1.0))
    return InvalidArgument(fmt::format("GPU memory utilization must be in (0, 1], got {}",
                                       in.utilization));
  if (in.block_size < 1) return InvalidArgument("KV block size must be >= 1");
  if (in.kv_block_bytes == 0) return InvalidArgument("KV block bytes must be > 0");
  if (in.min_kv_blocks < 1) return InvalidArgument("the KV pool needs at least one block");
  if (in.max_kv_blocks != 0 && in.max_kv_blocks < in.min_kv_blocks)
    return InvalidArgument(fmt::format("KV pool cap {} blocks is below the {} blocks needed",
                                       in.max_kv_blocks, in.min_kv_blocks));

  DeviceSplit s;
  s.weights = in.weight_bytes;
  s.workspace = in.workspace_bytes;
  const uint64_t share = (uint64_t)std::floor((long double)in.device_total * in.utilization);
  s.budget = share > in.device_in_use ? share - in.device_in_use : 0;

  // Saturating: a huge min_kv_blocks must not wrap around.
  const long double need_kv = (long double)in.min_kv_blocks * (long double)in.kv_block_bytes;
  const long double need = (long double)s.weights + (long double)s.workspace + need_kv;
  if (need > (long double)s.budget) {
    const long double shortfall = need - (long double)s.budget;
    return ResourceExhausted(fmt::format(
        "does not fit on the device: needs {} (weights {} + workspace {} + KV cache {} for {} "
        "blocks of {} positions), the budget is {} ({:.2f} x {} device memory - {} already in "
        "use): short by {}",
        bytes_exact((uint64_t)std::min<long double>(need, 1e19L)), bytes_exact(s.weights),
        bytes_exact(s.workspace), bytes_exact((uint64_t)std::min<long double>(need_kv, 1e19L)),
        in.min_kv_blocks, in.block_size, bytes_exact(s.budget), in.utilization,
        bytes_exact(in.device_total), bytes_exact(in.device_in_use),
        bytes_exact((uint64_t)std::min<long double>(shortfall, 1e19L))));
  }
  const uint64_t rest = s.budget - s.weights - s.workspace;
  s.kv_blocks = (int64_t)(rest / in.kv_block_bytes);
  if (in.max_kv_blocks > 0 && s.kv_blocks > in.max_kv_blocks) s.kv_blocks = in.max_kv_blocks;
  s.kv_tokens = s.kv_blocks * in.block_size;
  s.kv_bytes = (uint64_t)s.kv_blocks * in.kv_block_bytes;
  s.unused = rest - s.kv_bytes;
  return s;
}

}  // namespace frugal::planner
