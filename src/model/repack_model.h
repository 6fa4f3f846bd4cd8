// Load-time placement of a model's weights for CPU inference: the 4-bit and Q8_0 ones repacked
// into the CPU decode layout (backend/cpu/repack.h, WeightLayout::kTiles4), all matrices on huge pages.
// Opt-in per load, for CPU inference only (the GPU upload and the
// quantize / export tools read row-major weights; they also read tiled ones correctly, through
// cpu::dequantize_weight_row, but have no use for the layout).
//
// Every matrix whose dtype has the tiled layout and at least 4 rows is copied, in the tiled order
// (the same number of bytes), into one owned arena; with `huge_pages` every other matrix (the
// I8_ROW, float and FP8 ones, the LM head) is copied there too, unchanged, and the arena is
// 2 MiB-aligned and advised MADV_HUGEPAGE (base/huge_pages.h: a decode step streams every weight
// once, and over 4 KiB pages that stream is bound by page walks). The token embedding moves only
// when it is also the LM head (otherwise one row per token is read). Views sharing the same data
// (tied embeddings) are moved once. When the old bytes lie in a file mapping, their pages are
// released (madvise MADV_DONTNEED) so the resident set does not hold both copies; an owned buffer
// (a converted, requantized or dummy model) that held exactly one moved tensor and is not shared
// with another model is freed; other in-memory sources keep their old bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"
#include "model/model.h"

namespace frugal {

struct CpuPlacement {
  bool tiles = true;       // 4-bit / Q8_0 matrices into the decode tiles (--no-repack: false)
  bool huge_pages = true;  // every matrix into a huge-page arena (--no-huge-pages: false)
};

struct RepackReport {
  int64_t tensors = 0;         // distinct matrices repacked into tiles
  size_t bytes = 0;            // their bytes
  int64_t copied_tensors = 0;  // distinct matrices moved unchanged (huge_pages only)
  size_t copied_bytes = 0;     // their bytes
  size_t arena_bytes = 0;      // the arena's size (0: nothing moved)
  bool huge_pages = false;     // the arena was advised MADV_HUGEPAGE
  size_t released_bytes = 0;   // bytes of file-mapped pages given back
  int64_t freed_buffers = 0;   // owned buffers of the old layout freed
};

// A model is placed once: a second call (or a copy of a placed model) returns an empty report.
Result<RepackReport> repack_for_cpu_decode(Model* m, const CpuPlacement& placement = {});

}  // namespace frugal
