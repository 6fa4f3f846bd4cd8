// Matvec (decode) kernels per weight format against this machine's memory bandwidth, measured in
// the same run (Google Benchmark; target frugal_bench_kernels, not part of ctest).
//
//   mem_read/threads:N   sum of a kColdBytes buffer of uint64 with software prefetch (pure read:
//                        the matvec roofline)
//   mem_copy/threads:N   memcpy of a kColdBytes buffer; GB/s counts read + write (STREAM "copy")
//   matvec/<dtype>/<rows>x<cols>/<f32|q8>/threads:N/<target>
//       GB/s of weight bytes (scales included). f32 = float activations, q8 = int8 activations
//       (ActPrecision::kQ8; integer formats only). The matrix is replicated until the copies
//       cover kColdBytes and every iteration reads the next copy, so weights come from DRAM as
//       in decode of a model larger than the last-level cache (this VM reports a 480 MiB L3).
//       "q8row" = the int8 path one row per call (dot_q8, no row tiles: what matvec ran
//       before the row-tile kernels dot_q8_rows; FRUGAL_BENCH_Q8ROW=1 adds these runs).
//       "/tiled" = the same matrix repacked into the decode tiles (backend/cpu/repack.h: the
//       layout `frugal run` etc. use on the CPU unless --no-repack), int8 path, 4-bit formats, Q8_0.
//       "/hot" variants reuse one copy (cache-resident: the kernels' compute ceiling). Shapes
//       whose row length is not a whole number of blocks are skipped (576 for the g128 types).
// After the runs a table prints each matvec's best GB/s over repetitions next to the best read
// and copy GB/s of the same thread count, and the ratios.
// gemm/...: the prefill GEMM, float vs int8 activations (gemm_bench.cpp, its own table).
//
//   frugal_bench_kernels [--benchmark_repetitions=5] [--benchmark_filter=Q4_0]
// Environment: FRUGAL_BENCH_ALL_TARGETS=1 also runs every other SIMD target this CPU supports
// (default: only the one matvec dispatches to, which FRUGAL_CPU_ISA=avx2|... caps, cpu_isa.h).
// FRUGAL_BENCH_THREADS=1,2 (default 1 and the hardware thread count). FRUGAL_BENCH_CPU_TIME=1:
// rates per process CPU second x threads instead of per wall second (for comparing variants on
// a loaded machine: time a thread spends descheduled is not counted; pool threads' spinning
// is; the table's ratios then compare CPU-time rates with CPU-time rates).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_isa.h"
#include "base/huge_pages.h"
#include "gemm_bench.h"
#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "quant/ggml_blocks.h"

namespace {

using frugal::DType;
using frugal::TensorView;
using frugal::ThreadPool;
using frugal::cpu::ActPrecision;
using frugal::cpu::kern::KernelSet;

constexpr size_t kColdBytes = size_t(3) << 29;  // 1.5 GiB: > 3x the reported L3

bool cpu_time_mode() {
  static const bool on = std::getenv("FRUGAL_BENCH_CPU_TIME") != nullptr;
  return on;
}
// Rates are bytes per second of the timer: process CPU time covers `threads` threads at once.
double cpu_time_scale(int threads) { return cpu_time_mode() ? (double)threads : 1.0; }

// Wall time by default; process CPU time with FRUGAL_BENCH_CPU_TIME.
benchmark::internal::Benchmark* timed(benchmark::internal::Benchmark* b) {
  return cpu_time_mode() ? b->MeasureProcessCPUTime() : b->UseRealTime();
}

ThreadPool& pool_for(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

// A byte buffer on transparent huge pages (base/huge_pages.h, as the engine places its weights
// and probes its bandwidth; FRUGAL_BENCH_4K_PAGES=1: ordinary pages, for A/B), every page written
// once (so it is mapped before timing).
struct Buffer {
  std::shared_ptr<void> p;
  size_t size = 0;
  void reset(size_t n) {
    static const bool small = std::getenv("FRUGAL_BENCH_4K_PAGES") != nullptr;
    p.reset();
    p = frugal::allocate_stream_buffer(n, !small);
    size = n;
  }
  uint8_t* data() const { return static_cast<uint8_t*>(p.get()); }
};

// ---------------------------------------------------------------------------------------------
// Ceilings.

Buffer& ceiling_src() {
  static Buffer b;
  if (!b.data()) {
    b.reset(kColdBytes);
    std::memset(b.data(), 1, kColdBytes);
  }
  return b;
}

void BM_MemRead(benchmark::State& st, int threads) {
  ThreadPool& pool = pool_for(threads);
  const Buffer& buf = ceiling_src();
  const int64_t n = (int64_t)(buf.size / sizeof(uint64_t));
  const uint64_t* w = reinterpret_cast<const uint64_t*>(buf.data());
  std::vector<uint64_t> partial(64);
  for (auto _ : st) {
    pool.parallel_for(n / 512, 64, [&](int64_t b, int64_t e, int tid) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t i = b * 512; i < e * 512; i += 4) {
        if ((i & 7) == 0) __builtin_prefetch(w + i + 128);  // 1 KiB ahead, as the kernels do
        s0 += w[i];
        s1 += w[i + 1];
        s2 += w[i + 2];
        s3 += w[i + 3];
      }
      partial[(size_t)tid] = s0 + s1 + s2 + s3;
    });
    benchmark::DoNotOptimize(partial.data());
  }
  st.counters["GB/s"] = benchmark::Counter(cpu_time_scale(threads) * (double)buf.size / 1e9,
                                           benchmark::Counter::kIsIterationInvariantRate);
}

void BM_MemCopy(benchmark::State& st, int threads) {
  ThreadPool& pool = pool_for(threads);
  const Buffer& src = ceiling_src();
  static Buffer dst;
  if (!dst.data()) {
    dst.reset(kColdBytes);
    std::memset(dst.data(), 2, kColdBytes);
  }
  constexpr int64_t kPiece = 1 << 16;
  const int64_t pieces = (int64_t)(src.size / kPiece);
  for (auto _ : st) {
    pool.parallel_for(pieces, 16, [&](int64_t b, int64_t e, int) {
      std::memcpy(dst.data() + b * kPiece, src.data() + b * kPiece, (size_t)((e - b) * kPiece));
    });
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(cpu_time_scale(threads) * 2.0 * (double)src.size / 1e9,
                                           benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------------------------------------
// Matvec.

// The current matrix (benchmarks of one dtype and shape run back to back and share it): 64
// distinct quantized random rows tiled to `rows`, then replicated to cover kColdBytes.
struct Matrix {
  DType t = DType::F32;
  int64_t rows = 0, cols = 0;
  bool hot = false;
  bool tiled = false;
  size_t one = 0;  // bytes of one copy
  int64_t copies = 0;
  Buffer bytes;
};

const Matrix& matrix_for(DType t, int64_t rows, int64_t cols, bool hot, bool tiled) {
  static Matrix m;
  if (m.copies > 0 && m.t == t && m.rows == rows && m.cols == cols && m.hot == hot && m.tiled == tiled)
    return m;
  m.bytes.reset(0);
  m.t = t;
  m.rows = rows;
  m.cols = cols;
  m.hot = hot;
  m.tiled = tiled;
  const size_t rb = frugal::dtype_row_bytes(t, cols);
  m.one = rb * (size_t)rows;
  m.copies = hot ? 1 : (int64_t)((kColdBytes + m.one - 1) / m.one);
  m.bytes.reset(m.one * (size_t)m.copies);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  constexpr int64_t kDistinct = 64;
  std::vector<float> src((size_t)cols);
  for (int64_t r = 0; r < std::min(rows, kDistinct); ++r) {
    for (float& v : src) v = nd(rng);
    frugal::quantize_row(t, src.data(), m.bytes.data() + r * rb, cols);
  }
  for (int64_t r = kDistinct; r < rows; ++r)
    std::memcpy(m.bytes.data() + r * rb, m.bytes.data() + (r % kDistinct) * rb, rb);
  if (tiled) {
    std::vector<uint8_t> rm(m.bytes.data(), m.bytes.data() + m.one);
    frugal::cpu::pack_matrix(t, rows, cols, rm.data(), m.bytes.data());
  }
  for (int64_t c = 1; c < m.copies; ++c) std::memcpy(m.bytes.data() + c * m.one, m.bytes.data(), m.one);
  return m;
}

struct MatvecCase {
  DType t;
  int64_t rows, cols;
  int threads;
  ActPrecision act;
  const KernelSet* ks;
  bool hot;
  bool per_row = false;  // int8 path through dot_q8 one row at a time
  bool tiled = false;    // the decode tiles (repack.h)
};

// The int8 path with one dot_q8 call per row (the matvec loop before row tiles).
void matvec_per_row(const KernelSet& ks, const TensorView& w, const float* x, float* y,
                    ThreadPool& pool) {
  static frugal::cpu::kern::ActQ8 xq;
  const int64_t rows = w.rows(), cols = w.cols();
  const size_t rb = w.row_bytes();
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const auto fq = ks.dot_q8[(int)w.dtype];
  ks.quantize_act(x, cols, &xq);
  pool.parallel_for(rows, 16, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) y[r] = fq(base + r * rb, xq, cols);
  });
}

void BM_Matvec(benchmark::State& st, MatvecCase c) {
  const Matrix& m = matrix_for(c.t, c.rows, c.cols, c.hot, c.tiled);
  ThreadPool& pool = pool_for(c.threads);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x((size_t)c.cols), y((size_t)c.rows);
  for (float& v : x) v = nd(rng);
  TensorView w;
  w.dtype = c.t;
  w.shape = {c.rows, c.cols};
  w.nbytes = m.one;
  if (c.tiled) w.layout = frugal::WeightLayout::kTiles4;
  int64_t i = 0;
  for (auto _ : st) {
    w.data = m.bytes.data() + (size_t)i * m.one;
    if (c.per_row) matvec_per_row(*c.ks, w, x.data(), y.data(), pool);
    else frugal::cpu::kern::matvec_with(*c.ks, w, x.data(), y.data(), pool, c.act);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++i == m.copies) i = 0;
  }
  st.counters["GB/s"] = benchmark::Counter(cpu_time_scale(c.threads) * (double)m.one / 1e9,
                                           benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------------------------------------
// The ratio table.

class TableReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      std::string name = r.run_name.str();
      for (const std::string rt : {"/real_time", "/process_time"}) {
        if (name.size() > rt.size() && name.compare(name.size() - rt.size(), rt.size(), rt) == 0)
          name.resize(name.size() - rt.size());
      }
      if (auto g = r.counters.find("GFLOP/s"); g != r.counters.end()) {
        double& best = gflops_[name];
        best = std::max(best, (double)g->second);
      }
      auto it = r.counters.find("GB/s");
      if (it == r.counters.end()) continue;
      double& best = best_[name];
      best = std::max(best, (double)it->second);
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintTable(const std::vector<int>& threads) const {
    std::printf("\nweight GB/s (best repetition) vs the same run's memory ceilings; "
                "read = pure read, copy = (read + write) bytes / s%s\n",
                cpu_time_mode() ? "; per process CPU second x threads (FRUGAL_BENCH_CPU_TIME)" : "");
    for (int t : threads) {
      const std::string suffix = "/threads:" + std::to_string(t);
      const double rd = get("mem_read" + suffix), cp = get("mem_copy" + suffix);
      std::printf("\nthreads %d: read %.2f GB/s, copy %.2f GB/s\n", t, rd, cp);
      std::printf("%-44s %9s %8s %8s\n", "matvec", "GB/s", "/read", "/copy");
      for (const auto& [name, gbs] : best_) {
        if (name.rfind("matvec/", 0) != 0 || name.find(suffix + "/") == std::string::npos) continue;
        std::printf("%-44s %9.2f %7.0f%% %7.0f%%\n", name.substr(7).c_str(), gbs,
                    rd > 0 ? 100 * gbs / rd : 0.0, cp > 0 ? 100 * gbs / cp : 0.0);
      }
    }
  }

  const std::map<std::string, double>& gflops() const { return gflops_; }

 private:
  double get(const std::string& k) const {
    auto it = best_.find(k);
    return it == best_.end() ? 0.0 : it->second;
  }
  std::map<std::string, double> best_;
  std::map<std::string, double> gflops_;  // gemm/... runs
};

std::vector<int> thread_counts() {
  std::vector<int> v;
  if (const char* e = std::getenv("FRUGAL_BENCH_THREADS")) {
    for (const char* p = e; *p;) {
      char* end;
      const long n = std::strtol(p, &end, 10);
      if (end == p) break;
      if (n > 0) v.push_back((int)n);
      p = *end ? end + 1 : end;
    }
  }
  if (v.empty()) {
    v.push_back(1);
    const int hw = (int)std::max(1u, std::thread::hardware_concurrency());
    if (hw > 1) v.push_back(hw);
  }
  return v;
}

void register_all(const std::vector<int>& threads) {
  for (int t : threads) {
    timed(benchmark::RegisterBenchmark(("mem_read/threads:" + std::to_string(t)).c_str(),
                                       [t](benchmark::State& st) { BM_MemRead(st, t); }))
        ->Unit(benchmark::kMillisecond);
    timed(benchmark::RegisterBenchmark(("mem_copy/threads:" + std::to_string(t)).c_str(),
                                       [t](benchmark::State& st) { BM_MemCopy(st, t); }))
        ->Unit(benchmark::kMillisecond);
  }
  const auto& all_sets = frugal::cpu::kern::all_kernel_sets();
  // Default: only the set matvec uses (the best one under FRUGAL_CPU_ISA).
  const std::vector<KernelSet> best_only{frugal::cpu::kern::best_kernel_set()};
  const bool all_targets = std::getenv("FRUGAL_BENCH_ALL_TARGETS") != nullptr;
  const bool per_row = std::getenv("FRUGAL_BENCH_Q8ROW") != nullptr;
  static std::vector<KernelSet> sets;  // MatvecCase keeps pointers into it
  sets = all_targets ? all_sets : best_only;
  const DType types[] = {DType::F32,      DType::F16,     DType::BF16,     DType::Q8_0,
                         DType::Q4_0,     DType::Q4_1,    DType::I8_ROW,   DType::E4M3_ROW,
                         DType::E5M2_ROW, DType::I4_G64,  DType::I4_G64A,  DType::I4_G128,
                         DType::I4_G128A};
  struct Shape {
    int64_t rows, cols;
    bool hot;
  };
  // The hot shapes show the kernels' own speed: 512x4096 (4096-long rows, 1-2 MiB for the 4-bit
  // and 8-bit formats: in L2) and SmolLM2's 1536x576 (short rows: per-row costs show).
  // 8192x2048: Llama-3.2-1B's gate/up (the `frugal bench --dummy llama-3.2-1b` shapes).
  const Shape shapes[] = {{4096, 4096, false}, {14336, 4096, false}, {8192, 2048, false},
                          {1536, 576, false},  {1536, 576, true},    {512, 4096, true}};
  for (DType dt : types) {
    for (const Shape& sh : shapes) {
      if (sh.cols % frugal::dtype_info(dt).block_elems != 0) continue;  // e.g. 576 for g128
      for (size_t si = 0; si < sets.size(); ++si) {
        for (ActPrecision act : {ActPrecision::kF32, ActPrecision::kQ8}) {
          if (act == ActPrecision::kQ8 && sets[si].dot_q8[(int)dt] == nullptr) continue;
          for (int t : threads) {
            const std::string name = std::string("matvec/") + frugal::dtype_name(dt) + "/" +
                                     std::to_string(sh.rows) + "x" + std::to_string(sh.cols) +
                                     (act == ActPrecision::kQ8 ? "/q8" : "/f32") + "/threads:" +
                                     std::to_string(t) + "/" + sets[si].name + (sh.hot ? "/hot" : "");
            const MatvecCase c{dt, sh.rows, sh.cols, t, act, &sets[si], sh.hot};
            timed(benchmark::RegisterBenchmark(name.c_str(), [c](benchmark::State& st) { BM_Matvec(st, c); }))
                ->Unit(benchmark::kMicrosecond);
            if (act == ActPrecision::kQ8 && frugal::cpu::tile_layout_supported(dt)) {
              MatvecCase ct = c;
              ct.tiled = true;
              timed(benchmark::RegisterBenchmark((name + "/tiled").c_str(),
                                                 [ct](benchmark::State& st) { BM_Matvec(st, ct); }))
                  ->Unit(benchmark::kMicrosecond);
            }
            if (act == ActPrecision::kQ8 && per_row) {
              MatvecCase cr = c;
              cr.per_row = true;
              std::string rname = name;
              rname.replace(rname.find("/q8/"), 4, "/q8row/");
              timed(benchmark::RegisterBenchmark(rname.c_str(), [cr](benchmark::State& st) { BM_Matvec(st, cr); }))
                  ->Unit(benchmark::kMicrosecond);
            }
          }
        }
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (frugal::Status st = frugal::cpu::set_cpu_isa_from_env(); !st.ok()) {
    std::fprintf(stderr, "frugal_bench_kernels: %s\n", st.message().c_str());
    return 1;
  }
  const std::vector<int> threads = thread_counts();
  register_all(threads);
  frugal_bench::register_gemm(threads);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("weight kernels: %s (best of:", frugal::cpu::kern::best_kernel_set().name);
  for (const KernelSet& ks : frugal::cpu::kern::all_kernel_sets()) std::printf(" %s", ks.name);
  std::printf(")\n");
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintTable(threads);
  frugal_bench::print_gemm_table(reporter.gflops());
  benchmark::Shutdown();
  return 0;
}
