#include "model/repack_model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/repack.h"
#include "base/huge_pages.h"

namespace frugal {

namespace {

// Address ranges of this process's file-backed mappings (/proc/self/maps lines with an inode).
std::vector<std::pair<uintptr_t, uintptr_t>> file_mappings() {
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  std::ifstream in("/proc/self/maps");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string range, perms, offset, dev;
    unsigned long long inode = 0;
    if (!(ls >> range >> perms >> offset >> dev >> inode) || inode == 0) continue;
    const size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    out.emplace_back((uintptr_t)std::stoull(range.substr(0, dash), nullptr, 16),
                     (uintptr_t)std::stoull(range.substr(dash + 1), nullptr, 16));
  }
  return out;
}

// Gives back the whole pages of [p, p + n) when they lie in one file mapping; returns the bytes.
size_t release_file_pages(const void* p, size_t n,
                          const std::vector<std::pair<uintptr_t, uintptr_t>>& maps) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t b = (uintptr_t)p, e = b + n;
  const uintptr_t lo = (b + page - 1) / page * page, hi = e / page * page;
  if (lo >= hi) return 0;
  for (const auto& [mb, me] : maps) {
    if (lo >= mb && hi <= me) {
      if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED) != 0) return 0;
      return hi - lo;
    }
  }
  return 0;
}

}  // namespace

Result<RepackReport> repack_for_cpu_decode(Model* m, const CpuPlacement& placement) {
  RepackReport rep;
  if (m->cpu_placed) return rep;
  ModelWeights& w = m->weights;
  std::vector<TensorView*> views = {&w.output};
  if (w.token_embd.data == w.output.data) views.push_back(&w.token_embd);  // tied: the LM head
  for (LayerWeights& L : w.layers)
    for (TensorView* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) views.push_back(t);

  // The distinct tensors that move, and their offsets in the arena (64-byte aligned).
  struct Move {
    TensorView* view;
    bool tile;
    size_t bytes, offset;
  };
  std::vector<Move> moves;
  std::map<const void*, size_t> index;  // old data -> its move
  size_t total = 0;
  for (TensorView* t : views) {
    if (t->data == nullptr || !t->row_major() || index.count(t->data) > 0) continue;
    const bool tile = placement.tiles && cpu::tile_layout_supported(t->dtype) &&
                      t->rows() >= cpu::kTileRows;
    if (!tile && !placement.huge_pages) continue;
    const size_t need = (size_t)t->rows() * t->row_bytes();
    if (t->nbytes < need)
      return Corrupt("repack: tensor '" + t->name + "' holds " + std::to_string(t->nbytes) +
                     " bytes, its shape needs " + std::to_string(need));
    index[t->data] = moves.size();
    moves.push_back({t, tile, need, total});
    total += (need + 63) / 64 * 64;
  }
  m->cpu_placed = true;
  if (moves.empty()) return rep;
  std::shared_ptr<void> arena = allocate_stream_buffer(total, placement.huge_pages);
  if (arena == nullptr)
    return ResourceExhausted("repack: out of memory for the " + std::to_string(total >> 20) +
                             " MiB weight arena");
  rep.arena_bytes = total;
  rep.huge_pages = placement.huge_pages;
  uint8_t* base = static_cast<uint8_t*>(arena.get());

  const auto maps = file_mappings();
  for (const Move& mv : moves) {
    const TensorView& t = *mv.view;
    uint8_t* dst = base + mv.offset;
    if (mv.tile) {
      cpu::pack_matrix(t.dtype, t.rows(), t.cols(), static_cast<const uint8_t*>(t.data), dst);
      ++rep.tensors;
      rep.bytes += mv.bytes;
    } else {
      std::memcpy(dst, t.data, mv.bytes);
      ++rep.copied_tensors;
      rep.copied_bytes += mv.bytes;
    }
    rep.released_bytes += release_file_pages(t.data, mv.bytes, maps);
  }
  // Every view of a moved tensor (tied ones included) now points into the arena.
  for (TensorView* t : views) {
    auto it = index.find(t->data);
    if (it == index.end()) continue;
    const Move& mv = moves[it->second];
    t->data = base + mv.offset;
    if (mv.tile) t->layout = WeightLayout::kTiles4;
  }
  m->storage.push_back(std::shared_ptr<const void>(arena, arena.get()));
  // Owned buffers that held exactly a repacked tensor and that nothing else shares: freed.
  std::vector<std::shared_ptr<const void>>& st = m->storage;
  for (size_t i = 0; i < st.size();) {
    if (st[i].use_count() == 1 && index.count(st[i].get()) > 0) {
      st.erase(st.begin() + (std::ptrdiff_t)i);
      ++rep.freed_buffers;
    } else {
      ++i;
    }
  }
  return rep;
}

}  // namespace frugal
