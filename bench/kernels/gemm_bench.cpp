// The prefill GEMM (matmul) per weight format: float activations (the float GEMM: panels
// dequantized to float, FMA tiles) against int8 activations (ActPrecision::kQ8: the int8 GEMM,
// backend/cpu/gemm_q8.h), in the same run, on Llama-3.2-1B's shapes (q/o 2048x2048, gate/up
// 8192x2048, down 2048x8192) with 512 tokens (the pp512 of `frugal bench`).
//
//   gemm/<dtype>/<rows>x<cols>x<tokens>/<f32|q8>/threads:N    counter GFLOP/s = 2 rows cols tokens
//   per second (wall); with FRUGAL_BENCH_CPU_TIME=1 per process CPU second (= per core-second:
//   not multiplied by the threads, unlike the GB/s of the matvec section).
// The weights are laid out as a model's are at load (model/repack_model.h): the 4-bit formats
// and Q8_0 repacked into the decode tiles (repack.h), on huge pages; tokens and outputs on huge
// pages as the runner's activations (model/llama.h).
// The kernels run on the target matmul dispatches to (FRUGAL_CPU_ISA=avx2 caps it, cpu_isa.h).
//
//   gemm_pack/<dtype>/<rows>x<cols>/threads:1   the int8 GEMM's panel packing alone
//   (kern::pack_panel_q8 over every row panel of the matrix, as matmul_q8 does once per call);
//   counter GB/s = weight bytes read per second.
// After the runs a table prints, per format and shape, the best f32 and q8 GFLOP/s and q8 / f32;
// "(float)" marks formats for which matmul(kQ8) runs the float GEMM on this target
// (kern::gemm_q8_wins: 8-bit weights without AVX-512 VNNI).
//
//   frugal_bench_kernels --benchmark_filter=gemm/ [--benchmark_repetitions=3]
// FRUGAL_BENCH_GEMM_TOKENS=N changes the token count (default 512).
#include "gemm_bench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/cpu/gemm_q8.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "base/huge_pages.h"
#include "quant/ggml_blocks.h"

namespace frugal_bench {
namespace {

using frugal::DType;
using frugal::TensorView;
using frugal::ThreadPool;
using frugal::cpu::ActPrecision;

bool cpu_time() { return std::getenv("FRUGAL_BENCH_CPU_TIME") != nullptr; }

ThreadPool& gemm_pool(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

int64_t gemm_tokens() {
  const char* e = std::getenv("FRUGAL_BENCH_GEMM_TOKENS");
  const long n = e ? std::strtol(e, nullptr, 10) : 0;
  return n > 1 ? n : 512;
}

// The current matrix (runs of one dtype and shape are registered back to back and share it).
struct GemmData {
  DType t = DType::F32;
  int64_t rows = 0, cols = 0, tokens = 0;
  std::vector<uint8_t, frugal::HugePageAllocator<uint8_t>> w;
  std::vector<float, frugal::HugePageAllocator<float>> x, y;
  TensorView view;
};

const GemmData& data_for(DType t, int64_t rows, int64_t cols, int64_t tokens) {
  static GemmData g;
  if (!g.w.empty() && g.t == t && g.rows == rows && g.cols == cols && g.tokens == tokens) return g;
  g.t = t;
  g.rows = rows;
  g.cols = cols;
  g.tokens = tokens;
  const size_t rb = frugal::dtype_row_bytes(t, cols);
  g.w.assign(rb * (size_t)rows, 0);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> src((size_t)cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : src) v = nd(rng);
    frugal::quantize_row(t, src.data(), g.w.data() + r * rb, cols);
  }
  std::normal_distribution<float> nx(0.0f, 1.0f);
  g.x.resize((size_t)(tokens * cols));
  for (float& v : g.x) v = nx(rng);
  g.y.assign((size_t)(tokens * rows), 0.0f);
  g.view = TensorView{};
  g.view.dtype = t;
  g.view.shape = {rows, cols};
  if (frugal::cpu::tile_layout_supported(t)) {
    std::vector<uint8_t> row_major(g.w.begin(), g.w.end());
    frugal::cpu::pack_matrix(t, rows, cols, row_major.data(), g.w.data());
    g.view.layout = frugal::WeightLayout::kTiles4;
  }
  g.view.data = g.w.data();
  g.view.nbytes = g.w.size();
  return g;
}

struct GemmCase {
  DType t;
  int64_t rows, cols, tokens;
  ActPrecision act;
  int threads;
};

void BM_Gemm(benchmark::State& st, GemmCase c) {
  GemmData& g = const_cast<GemmData&>(data_for(c.t, c.rows, c.cols, c.tokens));
  ThreadPool& pool = gemm_pool(c.threads);
  for (auto _ : st) {
    frugal::cpu::matmul(g.view, g.x.data(), c.tokens, g.y.data(), pool, c.act);
    benchmark::DoNotOptimize(g.y.data());
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * (double)c.rows * (double)c.cols * (double)c.tokens / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// The int8 GEMM's packing of every row panel (one thread), from the layout above.
void BM_GemmPack(benchmark::State& st, DType t, int64_t rows, int64_t cols) {
  const GemmData& g = data_for(t, rows, cols, gemm_tokens());
  const frugal::cpu::kern::GemmQ8Set& ks = frugal::cpu::kern::best_gemm_q8_set();
  const int planes = frugal::cpu::kern::panel_planes(ks.shape, t);
  const int64_t nb = (cols + 31) / 32, NR = ks.shape.rows;
  std::vector<uint8_t, frugal::HugePageAllocator<uint8_t>> buf(
      frugal::cpu::kern::panel_bytes(ks.shape, planes, nb) + 64);
  uint8_t* p = buf.data() + (64 - (uintptr_t)buf.data() % 64) % 64;
  for (auto _ : st) {
    frugal::cpu::kern::PackedPanel pp;
    for (int64_t r0 = 0; r0 < rows; r0 += NR)
      frugal::cpu::kern::pack_panel_q8(ks.shape, planes, g.view, r0, std::min(NR, rows - r0), 0, nb, p, &pp);
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter((double)g.w.size() / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

struct Shape {
  int64_t rows, cols;
};
constexpr Shape kShapes[] = {{2048, 2048}, {8192, 2048}, {2048, 8192}};
constexpr DType kTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::I4_G128, DType::I8_ROW};

std::string case_name(DType t, const Shape& s, int64_t tokens, const char* act, int threads) {
  return std::string("gemm/") + frugal::dtype_name(t) + "/" + std::to_string(s.rows) + "x" +
         std::to_string(s.cols) + "x" + std::to_string(tokens) + "/" + act + "/threads:" +
         std::to_string(threads);
}

}  // namespace

void register_gemm(const std::vector<int>& threads) {
  const int64_t tokens = gemm_tokens();
  for (DType t : kTypes)
    for (const Shape& s : kShapes) {
      auto* pb = benchmark::RegisterBenchmark(
          (std::string("gemm_pack/") + frugal::dtype_name(t) + "/" + std::to_string(s.rows) + "x" +
           std::to_string(s.cols) + "/threads:1").c_str(),
          [t, s](benchmark::State& st) { BM_GemmPack(st, t, s.rows, s.cols); });
      pb->Unit(benchmark::kMillisecond)->UseRealTime();
      for (int th : threads)
        for (ActPrecision act : {ActPrecision::kF32, ActPrecision::kQ8}) {
          const GemmCase c{t, s.rows, s.cols, tokens, act, th};
          auto* b = benchmark::RegisterBenchmark(
              case_name(t, s, tokens, act == ActPrecision::kQ8 ? "q8" : "f32", th).c_str(),
              [c](benchmark::State& st) { BM_Gemm(st, c); });
          b->Unit(benchmark::kMillisecond);
          if (cpu_time()) b->MeasureProcessCPUTime();
          else b->UseRealTime();
        }
    }
}

void print_gemm_table(const std::map<std::string, double>& best) {
  std::set<int> threads;
  for (const auto& [name, v] : best) {
    const size_t p = name.find("/threads:");
    if (name.rfind("gemm/", 0) == 0 && p != std::string::npos) threads.insert(std::atoi(name.c_str() + p + 9));
  }
  if (threads.empty()) return;
  const int64_t tokens = gemm_tokens();
  std::printf("\nprefill GEMM GFLOP/s (best repetition), %lld tokens, %s; q8 = int8 activations\n",
              (long long)tokens,
              cpu_time() ? "per core-second (FRUGAL_BENCH_CPU_TIME)" : "per wall second");
  for (int th : threads) {
    std::printf("\nthreads %d\n%-10s %-16s %9s %9s %8s\n", th, "format", "shape", "f32", "q8", "q8/f32");
    for (DType t : kTypes)
      for (const Shape& s : kShapes) {
        auto get = [&](const char* act) {
          auto it = best.find(case_name(t, s, tokens, act, th));
          return it == best.end() ? 0.0 : it->second;
        };
        const double f = get("f32"), q = get("q8");
        if (f == 0 && q == 0) continue;
        const bool int8 = frugal::cpu::kern::gemm_q8_wins(frugal::cpu::kern::best_gemm_q8_set(), t);
        std::printf("%-10s %-16s %9.1f %9.1f %8.2f%s\n", frugal::dtype_name(t),
                    (std::to_string(s.rows) + "x" + std::to_string(s.cols)).c_str(), f, q,
                    f > 0 ? q / f : 0.0, int8 ? "" : "  (float)");
      }
  }
}

}  // namespace frugal_bench
