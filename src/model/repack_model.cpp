#include "model/repack_model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/repack.h"

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

Result<RepackReport> repack_for_cpu_decode(Model* m) {
  RepackReport rep;
  ModelWeights& w = m->weights;
  std::vector<TensorView*> views = {&w.token_embd, &w.output};
  for (LayerWeights& L : w.layers)
    for (TensorView* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) views.push_back(t);
  const auto maps = file_mappings();
  std::map<const void*, const void*> moved;  // old data -> repacked data
  for (TensorView* t : views) {
    if (t->data == nullptr || !t->row_major() || !cpu::tile_layout_supported(t->dtype)) continue;
    if (auto it = moved.find(t->data); it != moved.end()) {  // tied: already repacked
      t->data = it->second;
      t->layout = WeightLayout::kTiles4;
      continue;
    }
    if (t->rows() < cpu::kTileRows) continue;
    const size_t need = (size_t)t->rows() * t->row_bytes();
    if (t->nbytes < need)
      return Corrupt("repack: tensor '" + t->name + "' holds " + std::to_string(t->nbytes) +
                     " bytes, its shape needs " + std::to_string(need));
    void* buf = std::aligned_alloc(64, (need + 63) / 64 * 64);
    if (buf == nullptr) return ResourceExhausted("repack: out of memory for tensor '" + t->name + "'");
    std::shared_ptr<void> owned(buf, std::free);
    cpu::pack_matrix(t->dtype, t->rows(), t->cols(), static_cast<const uint8_t*>(t->data),
                     static_cast<uint8_t*>(buf));
    rep.released_bytes += release_file_pages(t->data, need, maps);
    moved[t->data] = buf;
    m->storage.push_back(std::shared_ptr<const void>(owned, buf));
    t->data = buf;
    t->layout = WeightLayout::kTiles4;
    ++rep.tensors;
    rep.bytes += need;
  }
  // Owned buffers that held exactly a repacked tensor and that nothing else shares: freed.
  std::vector<std::shared_ptr<const void>>& st = m->storage;
  for (size_t i = 0; i < st.size();) {
    if (st[i].use_count() == 1 && moved.count(st[i].get()) > 0) {
      st.erase(st.begin() + (std::ptrdiff_t)i);
      ++rep.freed_buffers;
    } else {
      ++i;
    }
  }
  return rep;
}

}  // namespace frugal
