// Private to backend/cpu: which SIMD targets the weight-format kernels (*_hwy.cpp) are compiled
// for. Include first, before any hwy header, in every *_hwy.cpp.
//
// Every attainable x86 target is compiled into the same object (Highway's foreach_target.h) and
// the best one the CPU supports is picked at run time (hwy::SupportedTargets()): AVX3_DL
// (AVX-512 + VNNI, Ice Lake and later), AVX3 (AVX-512 F/BW/DQ/VL, Skylake-X), AVX2 (+FMA, F16C;
// Haswell and later) and the portable scalar fallback. SSSE3/SSE4 are left out (compile time;
// they would only serve pre-2013 CPUs). CMake compiles these files with -march=x86-64 even when
// the rest of the build uses -march=native, so the lower targets stay runnable on older CPUs and
// the tests can exercise every target this machine supports.
#pragma once

#ifndef HWY_COMPILE_ALL_ATTAINABLE
#define HWY_COMPILE_ALL_ATTAINABLE
#endif
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4)
#endif
