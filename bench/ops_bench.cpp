// CPU op benchmarks (Google Benchmark). Not wired into CMake yet; build by hand:
//   g++ -O2 -march=native -std=c++20 -Isrc bench/ops_bench.cpp build/libfrugal_core.a \
//       -lbenchmark -lpthread -o /tmp/ops_bench
//
// Ceiling: BM_ReadBandwidth sums a 1.5 GiB buffer with the same thread pool (bytes/s = read
// bandwidth). Matvec reports weight bytes/s; compare the two. "cold" variants cycle through
// enough copies of the matrix (>= 1.5 GiB) that weights come from DRAM, as in decode of a model
// larger than the last-level cache; "hot" reuses one copy (cache-resident).
// On a shared machine run with --benchmark_repetitions=10 --benchmark_min_time=0.05 and read
// the "_min" rows (the least-disturbed repetition).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "quant/ggml_blocks.h"

namespace {

using frugal::DType;
using frugal::TensorView;
using frugal::ThreadPool;

// > 2x the last-level cache: this VM reports a 480 MiB L3 (the default model fits in it).
constexpr size_t kColdBytes = size_t(3) << 29;  // 1.5 GiB

ThreadPool& pool_for(int threads) {
  static ThreadPool p1(1), p2(2), p4(4);
  return threads == 1 ? p1 : threads == 2 ? p2 : p4;
}

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> v((size_t)n);
  for (float& x : v) x = nd(rng);
  return v;
}

// `copies` back-to-back quantized copies of one [rows, cols] matrix.
struct Matrix {
  std::vector<uint8_t> bytes;
  size_t one = 0;
  int copies = 1;
  TensorView view(int i) const {
    TensorView v;
    v.dtype = dtype;
    v.shape = {rows, cols};
    v.data = bytes.data() + (size_t)i * one;
    v.nbytes = one;
    return v;
  }
  DType dtype;
  int64_t rows, cols;
};

Matrix make_matrix(DType t, int64_t rows, int64_t cols, bool cold) {
  Matrix m;
  m.dtype = t;
  m.rows = rows;
  m.cols = cols;
  m.one = frugal::dtype_row_bytes(t, cols) * (size_t)rows;
  m.copies = cold ? (int)((kColdBytes + m.one - 1) / m.one) : 1;
  m.bytes.resize(m.one * (size_t)m.copies);
  const std::vector<float> src = random_floats(rows * cols, 1);
  const size_t rb = frugal::dtype_row_bytes(t, cols);
  for (int64_t r = 0; r < rows; ++r)
    frugal::quantize_row(t, src.data() + r * cols, m.bytes.data() + r * rb, cols);
  for (int c = 1; c < m.copies; ++c) std::memcpy(m.bytes.data() + c * m.one, m.bytes.data(), m.one);
  return m;
}

// Args: dtype, rows, cols, threads, cold.
void BM_Matvec(benchmark::State& st) {
  const DType t = (DType)st.range(0);
  const int64_t rows = st.range(1), cols = st.range(2);
  ThreadPool& pool = pool_for((int)st.range(3));
  const Matrix m = make_matrix(t, rows, cols, st.range(4) != 0);
  const std::vector<float> x = random_floats(cols, 2);
  std::vector<float> y((size_t)rows);
  int i = 0;
  for (auto _ : st) {
    frugal::cpu::matvec(m.view(i), x.data(), y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % m.copies;
  }
  st.SetBytesProcessed((int64_t)st.iterations() * (int64_t)m.one);
  st.SetLabel(std::string(frugal::dtype_name(t)) + (st.range(4) ? " cold" : " hot"));
}

// Prefill: Args dtype, rows, cols, threads, n_tokens. Reports FLOP/s as items/s.
void BM_Matmul(benchmark::State& st) {
  const DType t = (DType)st.range(0);
  const int64_t rows = st.range(1), cols = st.range(2), n_tok = st.range(4);
  ThreadPool& pool = pool_for((int)st.range(3));
  const Matrix m = make_matrix(t, rows, cols, false);
  const std::vector<float> X = random_floats(n_tok * cols, 3);
  std::vector<float> Y((size_t)(rows * n_tok));
  for (auto _ : st) {
    frugal::cpu::matmul(m.view(0), X.data(), n_tok, Y.data(), pool);
    benchmark::DoNotOptimize(Y.data());
  }
  st.SetItemsProcessed((int64_t)st.iterations() * 2 * rows * cols * n_tok);  // FLOPs
  st.SetLabel(std::string(frugal::dtype_name(t)) + " items/s = FLOP/s");
}

// The ceiling: read bandwidth of the pool over a 1.5 GiB buffer (an F32 dot of each 16 KiB piece
// against an L1-resident vector, so only the big buffer streams from memory).
void BM_ReadBandwidth(benchmark::State& st) {
  ThreadPool& pool = pool_for((int)st.range(0));
  constexpr int64_t kPiece = 4096;
  const int64_t n = (int64_t)(kColdBytes / sizeof(float));
  std::vector<float> buf((size_t)n, 1.0f), ones((size_t)kPiece, 1.0f), partial(8);
  for (auto _ : st) {
    pool.parallel_for(n / kPiece, 16, [&](int64_t b, int64_t e, int tid) {
      float s = 0;
      for (int64_t i = b; i < e; ++i)
        s += frugal::cpu::vec_dot(DType::F32, buf.data() + i * kPiece, ones.data(), kPiece);
      partial[(size_t)tid] = s;
    });
    benchmark::DoNotOptimize(partial.data());
  }
  st.SetBytesProcessed((int64_t)st.iterations() * (int64_t)kColdBytes);
}

// Cost of waking the pool for an empty job (paid by every parallel op in a decode step).
void BM_ParallelForOverhead(benchmark::State& st) {
  ThreadPool& pool = pool_for((int)st.range(0));
  for (auto _ : st) pool.parallel_for(64, 1, [](int64_t, int64_t, int) {});
}

constexpr int64_t kQ41 = (int64_t)DType::Q4_1, kQ80 = (int64_t)DType::Q8_0;

double min_of(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

BENCHMARK(BM_ReadBandwidth)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->ComputeStatistics("min", min_of)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParallelForOverhead)->Arg(1)->Arg(2)->UseRealTime()->ComputeStatistics("min", min_of);
BENCHMARK(BM_Matvec)
    ->ArgsProduct({{kQ41}, {576}, {1536}, {1, 2}, {0, 1}})
    ->ArgsProduct({{kQ41}, {1536}, {576}, {1, 2}, {0, 1}})
    ->ArgsProduct({{kQ80}, {49152}, {576}, {1, 2}, {0, 1}})
    ->ArgsProduct({{kQ80}, {576}, {1536}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->ComputeStatistics("min", min_of)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Matmul)
    ->ArgsProduct({{kQ41}, {1536}, {576}, {1, 2}, {64}})
    ->UseRealTime()
    ->ComputeStatistics("min", min_of)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
