// Private to backend/cpu: the run-time switch from a Highway target to the kernels compiled for it.
// Include inside a *_hwy.cpp's `#if HWY_ONCE` section (after hwy/highway.h, so HWY_TARGETS and the
// per-target namespaces N_AVX3_DL, N_AVX3, ... exist). Usage, in a function returning bool:
//   FRUGAL_HWY_DISPATCH(target, FillFooKernels(ks))
// runs N_<target>::FillFooKernels(ks) and returns true for a compiled target, else returns false.
#pragma once

#if HWY_TARGETS & HWY_AVX3_DL
#define FRUGAL_HWY_CASE_AVX3_DL(CALL) case HWY_AVX3_DL: N_AVX3_DL::CALL; return true;
#else
#define FRUGAL_HWY_CASE_AVX3_DL(CALL)
#endif
#if HWY_TARGETS & HWY_AVX3
#define FRUGAL_HWY_CASE_AVX3(CALL) case HWY_AVX3: N_AVX3::CALL; return true;
#else
#define FRUGAL_HWY_CASE_AVX3(CALL)
#endif
#if HWY_TARGETS & HWY_AVX2
#define FRUGAL_HWY_CASE_AVX2(CALL) case HWY_AVX2: N_AVX2::CALL; return true;
#else
#define FRUGAL_HWY_CASE_AVX2(CALL)
#endif
#if HWY_TARGETS & HWY_EMU128
#define FRUGAL_HWY_CASE_EMU128(CALL) case HWY_EMU128: N_EMU128::CALL; return true;
#else
#define FRUGAL_HWY_CASE_EMU128(CALL)
#endif
#if HWY_TARGETS & HWY_SCALAR
#define FRUGAL_HWY_CASE_SCALAR(CALL) case HWY_SCALAR: N_SCALAR::CALL; return true;
#else
#define FRUGAL_HWY_CASE_SCALAR(CALL)
#endif

#define FRUGAL_HWY_DISPATCH(TARGET, CALL)                                                   \
  switch (TARGET) {                                                                         \
    FRUGAL_HWY_CASE_AVX3_DL(CALL) FRUGAL_HWY_CASE_AVX3(CALL) FRUGAL_HWY_CASE_AVX2(CALL)     \
    FRUGAL_HWY_CASE_EMU128(CALL) FRUGAL_HWY_CASE_SCALAR(CALL)                               \
    default: return false;                                                                  \
  }
