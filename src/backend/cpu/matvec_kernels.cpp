// The kernel sets: one per SIMD target compiled into the *_hwy.cpp files and supported by this
// CPU (Highway's run-time CPU detection), best first.
#include "backend/cpu/hwy_targets.h"  // first: Highway config, same as the kernel files
#include "backend/cpu/matvec_kernels.h"

#include <atomic>
#include <cstring>

#include "hwy/targets.h"

namespace frugal::cpu::kern {

const std::vector<KernelSet>& all_kernel_sets() {
  static const std::vector<KernelSet> sets = [] {
    std::vector<KernelSet> v;
    const int64_t usable = hwy::SupportedTargets() & float_kernel_targets() & q8_kernel_targets() &
                          q4_tile_kernel_targets() & q8_0_tile_kernel_targets();
    for (int64_t bits = usable; bits != 0; bits &= bits - 1) {
      const int64_t t = bits & -bits;  // Highway: a lower bit is a better target
      KernelSet ks;
      ks.target = t;
      ks.name = hwy::TargetName(t);
      if (fill_float_kernels(t, &ks) && fill_q8_kernels(t, &ks) && fill_q4_tile_kernels(t, &ks) &&
          fill_q8_0_tile_kernels(t, &ks))
        v.push_back(ks);
    }
    return v;
  }();
  return sets;
}

void expand_act4(ActQ8* x) {
  const size_t units = x->q.size() / 4;
  x->q4.resize(units * 16);
  for (size_t u = 0; u < units; ++u) {
    uint32_t v;
    std::memcpy(&v, x->q.data() + 4 * u, 4);
    for (int r = 0; r < 4; ++r) std::memcpy(x->q4.data() + 16 * u + 4 * r, &v, 4);
  }
}

namespace {
std::atomic<int64_t> g_target_cap{0};
}  // namespace

int64_t kernel_target_cap() { return g_target_cap.load(std::memory_order_relaxed); }
void set_kernel_target_cap(int64_t target_bit) { g_target_cap.store(target_bit, std::memory_order_relaxed); }

const KernelSet& best_kernel_set() {
  const auto& sets = all_kernel_sets();
  const int64_t cap = kernel_target_cap();
  for (const KernelSet& ks : sets)
    if (ks.target >= cap) return ks;
  return sets.back();
}

}  // namespace frugal::cpu::kern
