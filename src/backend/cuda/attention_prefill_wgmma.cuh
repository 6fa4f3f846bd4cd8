// Hopper warpgroup-MMA causal prefill attention (attention_prefill_wgmma.cu and
// attention_prefill_fa3.cu), head_dim 128:
// the PagedPrefillParams contract of paged_attention_prefill (attention.cuh). Called by
// paged_attention_prefill when p.kernel selects it (or kPrefillAuto picks it); the caller
// validates the parameters.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"
#include "base/status.h"

namespace frugal::cuda {

// variant: kWgmmaPlain (2-stage K/V ring, one tile ahead), kWgmmaDeep (3 stages, two tiles
// ahead), kWgmmaOverlap (3 stages, the softmax of tile j during O += P V of tile j - 1).
// kWgmmaTma / kWgmmaTmaOverlap / kWgmmaTmaPingPong: FlashAttention-3's structure
// (attention_prefill_fa3.cu): K/V by TMA, a producer warpgroup and 2 consumer warpgroups;
// + the softmax / P V overlap; + the consumers' GEMMs ping-ponged. Where the KV layout allows
// no tensor map (block_size not a power of two >= 8) they run the kWgmmaPlain kernel.
// kWgmmaTmaPingPong3: the ping-pong kernel with a 3-stage K/V ring (2 otherwise).
constexpr int kWgmmaPlain = 0, kWgmmaDeep = 1, kWgmmaOverlap = 2, kWgmmaTma = 3,
              kWgmmaTmaOverlap = 4, kWgmmaTmaPingPong = 5, kWgmmaTmaPingPong3 = 6;
// kWgmmaTmaGrouped (3: kWgmmaTmaGrouped3): the ping-pong kernel over the grouped K/V layout
// (one TMA box per block for both 64-column halves, one per tile where the tile's blocks are
// consecutive; K and V rings issued by two producer warps).
constexpr int kWgmmaTmaGrouped = 7, kWgmmaTmaGrouped3 = 8;
Status paged_attention_prefill_wgmma(const PagedPrefillParams& p, int variant,
                                     cudaStream_t stream);

// The TMA kernels alone: *launched = false (and Ok) where the layout or device allows no
// tensor map; an error Status where building the map or the launch failed.
Status paged_attention_prefill_tma(const PagedPrefillParams& p, int variant, cudaStream_t stream,
                                   bool* launched);

// Per host thread, the grouped kernels' copies (A/B benchmarks; defaults 128, true): boxes of
// at most max_box_rows positions (8 .. 128, a power of two; smaller blocks keep one box per
// block), and whether a tile of consecutive blocks goes as one box.
Status set_prefill_tma_boxes(int max_box_rows, bool runs);

}  // namespace frugal::cuda
