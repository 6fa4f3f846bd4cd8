// The run-time SIMD cap (backend/cpu/cpu_isa.h): names parse or fail with the valid list; a cap
// moves the matvec kernel set, the GEMM's Highway dispatch and the W8A8 kernels to the capped
// target (same bits as calling that target's kernels directly); a cap above this CPU is an
// error; FRUGAL_CPU_ISA and `frugal bench --cpu-isa` reach the same switch.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/w8a8_kernels.h"
#include "cli_runner.h"
#include "quant/ggml_blocks.h"
#include "test_util.h"

namespace frugal {
namespace {

using cpu::CpuIsa;

// Restores the uncapped default whatever a test does.
struct IsaGuard {
  ~IsaGuard() { EXPECT_TRUE(cpu::set_cpu_isa(CpuIsa::kAuto).ok()); }
};

// The Highway target name a cap should select here, or "" when this CPU lacks it.
std::string expected_target(CpuIsa isa) {
  const auto& sets = cpu::kern::all_kernel_sets();
  auto has = [&](const char* n) {
    for (const auto& ks : sets)
      if (std::string(ks.name) == n) return true;
    return false;
  };
  switch (isa) {
    case CpuIsa::kAuto: return sets.front().name;
    case CpuIsa::kScalar: return sets.back().name;
    case CpuIsa::kAvx512Vnni: return has("AVX3_DL") ? "AVX3_DL" : "";
    case CpuIsa::kAvx512: return has("AVX3") ? "AVX3" : "";
    case CpuIsa::kAvx2: return has("AVX2") ? "AVX2" : "";
  }
  return "";
}

const CpuIsa kAll[] = {CpuIsa::kAuto, CpuIsa::kAvx512Vnni, CpuIsa::kAvx512, CpuIsa::kAvx2, CpuIsa::kScalar};

TEST(CpuIsa, ParseNamesAndErrors) {
  for (CpuIsa isa : kAll) {
    Result<CpuIsa> r = cpu::parse_cpu_isa(cpu::cpu_isa_name(isa));
    ASSERT_TRUE(r.ok()) << cpu::cpu_isa_name(isa);
    EXPECT_EQ(*r, isa);
  }
  for (const char* bad : {"", "AVX2", "sse4", "avx", "avx512bw", "native"}) {
    Result<CpuIsa> r = cpu::parse_cpu_isa(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("valid: auto, avx512vnni, avx512, avx2, scalar"), std::string::npos)
        << r.status().message();
  }
}

TEST(CpuIsa, CapSelectsTheTargetOfMatvecGemmAndW8A8) {
  IsaGuard guard;
  const std::string best = cpu::kern::all_kernel_sets().front().name;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // A Q4_0 and an I8_ROW matrix with awkward shapes (rows not a multiple of the 4-row tile).
  const int64_t rows = 13, cols = 96;
  std::vector<float> wf((size_t)(rows * cols)), x((size_t)(cols * 3));
  for (float& v : wf) v = nd(rng);
  for (float& v : x) v = nd(rng);
  auto make = [&](DType t, std::vector<uint8_t>* bytes) {
    const size_t rb = dtype_row_bytes(t, cols);
    bytes->assign(rb * rows, 0);
    for (int64_t r = 0; r < rows; ++r) quantize_row(t, wf.data() + r * cols, bytes->data() + r * rb, cols);
    TensorView v;
    v.dtype = t;
    v.shape = {rows, cols};
    v.data = bytes->data();
    v.nbytes = bytes->size();
    return v;
  };
  std::vector<uint8_t> q4b, i8b;
  const TensorView q4 = make(DType::Q4_0, &q4b), i8 = make(DType::I8_ROW, &i8b);
  ThreadPool pool(2);
  for (CpuIsa isa : kAll) {
    SCOPED_TRACE(cpu::cpu_isa_name(isa));
    const std::string want = expected_target(isa);
    const Status st = cpu::set_cpu_isa(isa);
    if (want.empty()) {
      EXPECT_EQ(st.code(), StatusCode::kUnsupported) << st.message();
      EXPECT_NE(st.message().find("not available on this CPU"), std::string::npos) << st.message();
      continue;
    }
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(cpu::cpu_isa(), isa);
    EXPECT_EQ(cpu::matvec_kernel_target(), want);
    EXPECT_EQ(cpu::kern::best_kernel_set().name, want);
    // The GEMM dispatches through Highway: the scalar cap may land on EMU128 or SCALAR there.
    if (isa == CpuIsa::kScalar) {
      const std::string g = cpu::gemm::target_name();
      EXPECT_TRUE(g == "EMU128" || g == "SCALAR") << g;
    } else {
      EXPECT_EQ(cpu::gemm::target_name(), want);
    }
    // matvec (both activation paths) gives exactly the capped set's numbers.
    for (cpu::ActPrecision act : {cpu::ActPrecision::kF32, cpu::ActPrecision::kQ8}) {
      std::vector<float> y((size_t)rows), y_ref((size_t)rows);
      cpu::matvec(q4, x.data(), y.data(), pool, act);
      cpu::kern::matvec_with(cpu::kern::best_kernel_set(), q4, x.data(), y_ref.data(), pool, act);
      for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(y[(size_t)r], y_ref[(size_t)r]) << "row " << r;
    }
    // W8A8 goes to the capped target's set.
    const cpu::kern::W8A8KernelSet* w8 = nullptr;
    for (const auto& ks : cpu::kern::all_w8a8_kernel_sets())
      if (want == ks.name || (isa == CpuIsa::kScalar && &ks == &cpu::kern::all_w8a8_kernel_sets().back())) w8 = &ks;
    ASSERT_NE(w8, nullptr);
    std::vector<float> Y((size_t)(3 * rows)), Y_ref((size_t)(3 * rows));
    cpu::matmul_i8_token(i8, x.data(), 3, Y.data(), pool);
    cpu::kern::matmul_i8_token_with(*w8, i8, x.data(), 3, Y_ref.data(), pool);
    for (size_t i = 0; i < Y.size(); ++i) EXPECT_EQ(Y[i], Y_ref[i]) << i;
  }
  ASSERT_TRUE(cpu::set_cpu_isa(CpuIsa::kAuto).ok());
  EXPECT_EQ(cpu::matvec_kernel_target(), best);
  EXPECT_EQ(cpu::gemm::target_name(), best);
  // The per-target lists never shrink under a cap (tests and benchmarks walk them).
  ASSERT_TRUE(cpu::set_cpu_isa(CpuIsa::kScalar).ok());
  EXPECT_EQ(cpu::kern::all_kernel_sets().front().name, best);
}

TEST(CpuIsa, EnvironmentVariable) {
  IsaGuard guard;
  ASSERT_EQ(::unsetenv("FRUGAL_CPU_ISA"), 0);
  EXPECT_TRUE(cpu::set_cpu_isa_from_env().ok());
  EXPECT_EQ(cpu::cpu_isa(), CpuIsa::kAuto);
  ASSERT_EQ(::setenv("FRUGAL_CPU_ISA", "avx3", 1), 0);
  const Status bad = cpu::set_cpu_isa_from_env();
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("FRUGAL_CPU_ISA: unknown CPU ISA 'avx3'"), std::string::npos) << bad.message();
  EXPECT_EQ(cpu::cpu_isa(), CpuIsa::kAuto) << "a bad value changes nothing";
  ASSERT_EQ(::setenv("FRUGAL_CPU_ISA", "scalar", 1), 0);
  EXPECT_TRUE(cpu::set_cpu_isa_from_env().ok());
  EXPECT_EQ(cpu::cpu_isa(), CpuIsa::kScalar);
  EXPECT_EQ(cpu::matvec_kernel_target(), expected_target(CpuIsa::kScalar));
  ASSERT_EQ(::unsetenv("FRUGAL_CPU_ISA"), 0);
}

TEST(CpuIsa, CliFlagAndEnvironment) {
  // Invalid values fail cleanly (message, exit 1, no signal), from the flag and from the variable.
  const test::CliResult flag = test::run_cli("bench --dummy tiny --cpu-isa avx9 -p 4 -n 2 --reps 1 -t 1 --bw-mib 8");
  EXPECT_FALSE(flag.signaled);
  EXPECT_EQ(flag.exit_code, 1);
  EXPECT_EQ(flag.out, "");
  EXPECT_NE(flag.err.find("frugal: error: unknown CPU ISA 'avx9'"), std::string::npos) << flag.err;
  ASSERT_EQ(::setenv("FRUGAL_CPU_ISA", "avx-2", 1), 0);
  const test::CliResult e = test::run_cli("bench --dummy tiny -p 4 -n 2 --reps 1 -t 1 --bw-mib 8");
  ASSERT_EQ(::unsetenv("FRUGAL_CPU_ISA"), 0);
  EXPECT_FALSE(e.signaled);
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_NE(e.err.find("frugal: error: FRUGAL_CPU_ISA: unknown CPU ISA 'avx-2'"), std::string::npos) << e.err;
  // A valid cap shows in the bench header (table) and the JSON.
  const std::string scalar = expected_target(CpuIsa::kScalar);
  const test::CliResult ok = test::run_cli("bench --dummy tiny --dummy-layers 1 -p 4 -n 2 --reps 1 -t 1 "
                                           "--bw-mib 8 --cpu-isa scalar --json");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("\"matvec_kernel\": \"" + scalar + "\""), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("\"cpu_isa\": \"scalar\""), std::string::npos) << ok.out;
}

}  // namespace
}  // namespace frugal
