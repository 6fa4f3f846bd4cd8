// A run-time cap on the SIMD target of every CPU kernel that dispatches by Highway target: the
// weight-format matvec kernels (matvec_kernels.h), the prefill GEMM (gemm.h) and the W8A8 kernels
// (w8a8_kernels.h). By default each runs the best target this CPU supports; capping it measures
// what a smaller machine would get from the same code (e.g. the AVX2 path on an AVX-512 CPU).
//
// Values (the user-facing names, also read from the environment variable FRUGAL_CPU_ISA):
//   auto        the best target this CPU supports (the default)
//   avx512vnni  at most AVX-512 with VNNI (Highway AVX3_DL)
//   avx512      at most AVX-512 F/BW/DQ/VL without VNNI (Highway AVX3)
//   avx2        at most AVX2 + FMA + F16C (Highway AVX2)
//   scalar      the portable fallback (Highway EMU128/SCALAR)
// A cap above what the CPU has is an error (not a silent fallback), as is an unknown name.
#pragma once

#include <string_view>

#include "base/status.h"

namespace frugal::cpu {

enum class CpuIsa { kAuto, kAvx512Vnni, kAvx512, kAvx2, kScalar };

// "auto", "avx512vnni", "avx512", "avx2", "scalar" (case-sensitive); InvalidArgument otherwise,
// with the list of valid names.
Result<CpuIsa> parse_cpu_isa(std::string_view name);
const char* cpu_isa_name(CpuIsa isa);

// Caps every dispatching kernel at `isa` from now on (process-wide; not meant to be changed
// while kernels run on other threads). Unsupported if this CPU lacks that target.
Status set_cpu_isa(CpuIsa isa);
// set_cpu_isa(parse_cpu_isa($FRUGAL_CPU_ISA)); no change when the variable is unset or empty.
// Errors name the variable.
Status set_cpu_isa_from_env();
// The cap last set (kAuto if none).
CpuIsa cpu_isa();
// Highway's name of the target the matvec kernels run now ("AVX3_DL", "AVX3", "AVX2", "EMU128"...).
const char* matvec_kernel_target();

}  // namespace frugal::cpu
