#include "tokenizer/bpe.h"

#include <algorithm>

namespace frugal::tokenizer_internal {

void MergeTable::add(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  if (left < 0 || right < 0) return;
  if (2 * (size_ + 1) > slots_.size()) grow();
  const uint64_t k = key(left, right);
  for (size_t i = mix(k) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == kEmpty) {
      s.key = k;
      s.merge = Merge{rank, merged};
      ++size_;
      return;
    }
    if (s.key == k) {
      if (rank < s.merge.rank) s.merge = Merge{rank, merged};
      return;
    }
  }
}

void MergeTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
  mask_ = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    for (size_t i = mix(s.key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty) {
        slots_[i] = s;
        break;
      }
    }
  }
}

namespace {

using Candidate = BpeScratch::Candidate;

// Min-heap order on (rank, left position): std heap functions build a max-heap, so "less" means
// "worse".
inline bool worse(const Candidate& a, const Candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
}

}  // namespace

void bpe_merge(const MergeTable& merges, std::vector<int32_t>& word, BpeScratch& s) {
  const int32_t n = (int32_t)word.size();
  if (n < 2) return;
  s.symbols.resize(n);
  for (int32_t i = 0; i < n; ++i) s.symbols[i] = {word[i], i - 1, i + 1 < n ? i + 1 : -1};
  s.heap.clear();

  auto try_push = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = s.symbols[left].next;
    if (right < 0) return;
    const int32_t a = s.symbols[left].id, b = s.symbols[right].id;
    if (a == kNoToken || b == kNoToken) return;
    if (const MergeTable::Merge* m = merges.find(a, b)) {
      s.heap.push_back({m->rank, left, a, b, m->merged});
      std::push_heap(s.heap.begin(), s.heap.end(), worse);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_push(i);

  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), worse);
    const Candidate c = s.heap.back();
    s.heap.pop_back();
    BpeScratch::Symbol& l = s.symbols[c.left];
    // Stale if the left symbol changed or its right neighbour is no longer the same token.
    if (l.id != c.left_id || l.next < 0 || s.symbols[l.next].id != c.right_id) continue;
    BpeScratch::Symbol& r = s.symbols[l.next];
    l.id = c.merged;
    l.next = r.next;
    if (r.next >= 0) s.symbols[r.next].prev = c.left;
    r.id = kNoToken;  // removed
    r.next = r.prev = -1;
    try_push(l.prev);
    try_push(c.left);
  }

  int32_t out = 0;
  for (int32_t i = 0; i >= 0; i = s.symbols[i].next) word[out++] = s.symbols[i].id;
  word.resize(out);
}

}  // namespace frugal::tokenizer_internal
