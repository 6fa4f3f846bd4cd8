// Load-time repack of a model's 4-bit weights into the CPU decode layout (backend/cpu/repack.h,
// WeightLayout::kTiles4): opt-in per load, for CPU inference only (the GPU upload and the
// quantize / export tools read row-major weights; they also read tiled ones correctly, through
// cpu::dequantize_weight_row, but have no use for the layout).
//
// Every matrix whose dtype has the tiled layout and at least 4 rows is copied into an owned,
// 64-byte aligned buffer in the tiled order (the same number of bytes); views sharing the same
// data (tied embeddings) are repacked once. When the old bytes lie in a file mapping, their pages
// are released (madvise MADV_DONTNEED) so the resident set does not hold both copies; an owned
// buffer (a converted, requantized or dummy model) that held exactly one repacked tensor and is
// not shared with another model is freed; other in-memory sources keep their old bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"
#include "model/model.h"

namespace frugal {

struct RepackReport {
  int64_t tensors = 0;         // distinct matrices repacked
  size_t bytes = 0;            // their bytes
  size_t released_bytes = 0;   // bytes of file-mapped pages given back
  int64_t freed_buffers = 0;   // owned buffers of the old layout freed
};

Result<RepackReport> repack_for_cpu_decode(Model* m);

}  // namespace frugal
