// The BPE merge loop shared by byte-level (GPT-2) and SentencePiece-style (llama) tokenizers.
//
// A word starts as a sequence of symbols (token ids; kNoToken for a character the vocabulary lacks,
// which never merges). Repeatedly, the adjacent pair with the best (lowest) rank is replaced by its
// merged token; ties go to the leftmost pair. Ranks come from the merge list order (GPT-2,
// tokenizer.json) or from the merged token's score (SentencePiece: higher score = lower rank).
// The loop keeps the symbols in a linked list and candidate pairs in a binary heap, so a word of n
// symbols costs O(n log n).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace frugal::tokenizer_internal {

inline constexpr int32_t kNoToken = -1;

// (left id, right id) → (rank, merged id), an open-addressing hash table (linear probing,
// power-of-two capacity, load ≤ 1/2): merge lookups dominate encoding time.
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  // Adds (left, right) → merged with `rank`. An existing pair keeps its better (lower) rank.
  void add(int32_t left, int32_t right, int32_t rank, int32_t merged);
  const Merge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(left, right);
    for (size_t i = mix(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;  // the pair (-1, -1): never a real merge
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static uint64_t key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32) | (uint32_t)r; }
  static uint64_t mix(uint64_t k) {  // murmur3 finalizer
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
  }
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// Reusable buffers for bpe_merge (one per encode call; not shared between threads).
struct BpeScratch {
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // indices into symbols, -1 at the ends
  };
  struct Candidate {
    int32_t rank, left, left_id, right_id, merged;
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

// Merges `word` (symbol ids) in place.
void bpe_merge(const MergeTable& merges, std::vector<int32_t>& word, BpeScratch& scratch);

}  // namespace frugal::tokenizer_internal
