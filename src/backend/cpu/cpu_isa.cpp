// The SIMD target cap (cpu_isa.h): the matvec kernel sets and the W8A8 sets are chosen from
// their per-target lists by kern::kernel_target_cap(); the GEMM's Highway dispatch is capped
// through hwy::DisableTargets (which is process-wide in libhwy).
#include "backend/cpu/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "backend/cpu/hwy_targets.h"  // first: Highway config, same as the kernel files
#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/w8a8_kernels.h"
#include "hwy/targets.h"

namespace frugal::cpu {

namespace {

struct IsaName {
  CpuIsa isa;
  const char* name;
};
constexpr IsaName kNames[] = {{CpuIsa::kAuto, "auto"},
                              {CpuIsa::kAvx512Vnni, "avx512vnni"},
                              {CpuIsa::kAvx512, "avx512"},
                              {CpuIsa::kAvx2, "avx2"},
                              {CpuIsa::kScalar, "scalar"}};

std::atomic<CpuIsa> g_isa{CpuIsa::kAuto};

std::string valid_names() {
  std::string s;
  for (const IsaName& n : kNames) s += std::string(s.empty() ? "" : ", ") + n.name;
  return s;
}

std::string available_targets() {
  std::string s;
  for (const kern::KernelSet& ks : kern::all_kernel_sets()) s += std::string(s.empty() ? "" : ", ") + ks.name;
  return s;
}

// The Highway target bit of a cap (0: no such target compiled in / supported here).
int64_t target_bit(CpuIsa isa) {
  const auto& sets = kern::all_kernel_sets();
  int64_t want = 0;
  switch (isa) {
    case CpuIsa::kAuto: return sets.front().target;
    case CpuIsa::kScalar: return sets.back().target;
    case CpuIsa::kAvx512Vnni: want = HWY_AVX3_DL; break;
    case CpuIsa::kAvx512: want = HWY_AVX3; break;
    case CpuIsa::kAvx2: want = HWY_AVX2; break;
  }
  for (const kern::KernelSet& ks : sets)
    if (ks.target == want) return want;
  return 0;
}

}  // namespace

Result<CpuIsa> parse_cpu_isa(std::string_view name) {
  for (const IsaName& n : kNames)
    if (name == n.name) return n.isa;
  return InvalidArgument("unknown CPU ISA '" + std::string(name) + "' (valid: " + valid_names() + ")");
}

const char* cpu_isa_name(CpuIsa isa) {
  for (const IsaName& n : kNames)
    if (n.isa == isa) return n.name;
  return "?";
}

Status set_cpu_isa(CpuIsa isa) {
  // Build the per-target lists before DisableTargets narrows hwy::SupportedTargets(): they keep
  // every target the CPU has, so a later cap can widen again (tests and benchmarks use them).
  (void)kern::all_kernel_sets();
  (void)kern::all_w8a8_kernel_sets();
  const int64_t bit = target_bit(isa);
  if (bit == 0)
    return Unsupported(std::string("CPU ISA '") + cpu_isa_name(isa) +
                       "' is not available on this CPU (kernel targets here: " + available_targets() + ")");
  // Highway: a lower bit is a better target, so every bit below `bit` is a better one.
  hwy::DisableTargets(isa == CpuIsa::kAuto ? 0 : bit - 1);
  kern::set_kernel_target_cap(bit);
  g_isa.store(isa, std::memory_order_relaxed);
  return Status::Ok();
}

Status set_cpu_isa_from_env() {
  const char* v = std::getenv("FRUGAL_CPU_ISA");
  if (v == nullptr || *v == '\0') return Status::Ok();
  Result<CpuIsa> isa = parse_cpu_isa(v);
  if (!isa.ok()) return InvalidArgument("FRUGAL_CPU_ISA: " + isa.status().message());
  Status st = set_cpu_isa(*isa);
  if (!st.ok()) return Status(st.code(), "FRUGAL_CPU_ISA: " + st.message());
  return Status::Ok();
}

CpuIsa cpu_isa() { return g_isa.load(std::memory_order_relaxed); }

const char* matvec_kernel_target() { return kern::best_kernel_set().name; }

}  // namespace frugal::cpu
