// Threshold-search sampling (see sampling.cuh): one block of 512 threads per row.
#include <cmath>
#include <string>

#include "backend/cuda/check.cuh"
#include "backend/cuda/sampling.cuh"

namespace frugal::cuda {

Status SampleParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    return InvalidArgument("sampling: temperature must be a finite number >= 0");
  if (!(top_p > 0.0f && top_p <= 1.0f)) return InvalidArgument("sampling: top-p must be in (0, 1]");
  if (!(min_p >= 0.0f && min_p < 1.0f)) return InvalidArgument("sampling: min-p must be in [0, 1)");
  return Status::Ok();
}

namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kWays = 16;  // thresholds tried per pass (4 bits)

// Logit bits mapped so that unsigned order is float order; NaN maps to 0 (below everything).
__device__ __forceinline__ uint32_t ordered_bits(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
// Larger key = earlier in the CPU's candidate order; distinct for distinct ids.
__device__ __forceinline__ uint64_t key_of(float l, int64_t i) {
  return ((uint64_t)ordered_bits(l) << 32) | (uint64_t)(0xffffffffu - (uint32_t)i);
}
__device__ __forceinline__ int32_t id_of(uint64_t key) {
  return (int32_t)(0xffffffffu - (uint32_t)(key & 0xffffffffu));
}

// The row's elements: the logits in global memory, or (once few enough are left) the
// candidates copied to shared memory, keys and logits, in a fixed order.
struct Row {
  const float* x;
  int64_t n;
  uint64_t* skey;
  float* slog;
  int m;          // compacted elements
  bool compact;   // passes read skey/slog instead of x
};
constexpr int kCap = 2048;  // compact once at most this many elements can still matter

template <class Fn>
__device__ __forceinline__ void for_each(const Row& r, Fn&& fn) {
  if (r.compact) {
    for (int j = threadIdx.x; j < r.m; j += kThreads) fn(r.skey[j], r.slog[j]);
  } else {
    for (int64_t i = threadIdx.x; i < r.n; i += kThreads) {
      const float l = r.x[i];
      fn(key_of(l, i), l);
    }
  }
}

// What counts in a pass: candidates are keys >= lo (and, with min-p, exp(l - lmax) >= min_p);
// each weighs 1 (count), exp(l - lmax) or exp((l - lmax) / T).
struct Filter {
  uint64_t lo;
  float lmax;
  double min_p;     // 0: off
  int weight;       // 0: count, 1: exp(l - lmax), 2: exp((l - lmax) / temp)
  double temp;
  // A candidate with key >= max(lo, floor)? Its weight (the exp only for those).
  __device__ __forceinline__ bool get(uint64_t key, float l, uint64_t floor, double& w) const {
    if (key < lo || key < floor) return false;
    const double d = (double)l - (double)lmax;
    if (min_p > 0.0 && exp(d) < min_p) return false;
    w = weight == 0 ? 1.0 : exp(weight == 1 ? d : d / temp);
    return true;
  }
};

// Exclusive prefix sum of one int per thread over the block; *total gets the sum.
__device__ int block_exclusive_scan(int c, int* total, int* scratch) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int inc = c;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int o = __shfl_up_sync(0xffffffffu, inc, off);
    if (lane >= off) inc += o;
  }
  if (lane == 31) scratch[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    int w = lane < kWarps ? scratch[lane] : 0;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int o = __shfl_up_sync(0xffffffffu, w, off);
      if (lane >= off) w += o;
    }
    if (lane < kWarps) scratch[kWarps + lane] = w;  // inclusive over warps
  }
  __syncthreads();
  const int before = warp ? scratch[kWarps + warp - 1] : 0;
  *total = scratch[kWarps + kWarps - 1];
  __syncthreads();
  return before + inc - c;
}

// When at most kCap elements have key >= max(lo, floor), copies them (key, logit) to shared
// memory, in a fixed order (thread by thread), and later passes read only those: every later
// cut only raises the floor.
__device__ void try_compact(Row& r, uint64_t lo, uint64_t floor, int* iscratch) {
  if (r.compact) return;
  const uint64_t f = lo > floor ? lo : floor;
  int c = 0;
  for_each(r, [&](uint64_t k, float) { c += k >= f; });
  int total = 0;
  int pos = block_exclusive_scan(c, &total, iscratch);
  if (total > kCap) return;  // the same decision in every thread
  for_each(r, [&](uint64_t k, float l) {
    if (k >= f) {
      r.skey[pos] = k;
      r.slog[pos] = l;
      ++pos;
    }
  });
  __syncthreads();
  r.m = total;
  r.compact = true;
}

// Sum over the block of v[0..kWays), result in every thread's v. scratch: (kWarps + 1) * kWays.
__device__ void block_sum(double (&v)[kWays], double* scratch) {
#pragma unroll
  for (int j = 0; j < kWays; ++j)
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v[j] += __shfl_xor_sync(0xffffffffu, v[j], off);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0)
#pragma unroll
    for (int j = 0; j < kWays; ++j) scratch[warp * kWays + j] = v[j];
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int j = 0; j < kWays; ++j) {
      double s = lane < kWarps ? scratch[lane * kWays + j] : 0.0;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (lane == 0) scratch[kWarps * kWays + j] = s;
    }
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kWays; ++j) v[j] = scratch[kWarps * kWays + j];
  __syncthreads();
}

struct Scratch {
  double* d;   // (kWarps + 1) * kWays
  int* i;      // 2 * kWarps
};

// Total weight of the candidates (a fixed order of additions: each thread's elements in
// order, then the same reduction tree as select()).
__device__ double total(const Row& r, const Filter& f, const Scratch& s) {
  double v[kWays];
#pragma unroll
  for (int j = 0; j < kWays; ++j) v[j] = 0.0;
  for_each(r, [&](uint64_t k, float l) {
    double w;
    if (f.get(k, l, 0, w)) v[0] += w;
  });
  block_sum(v, s.d);
  return v[0];
}

// The largest key t such that F(t) = weight of candidates with key >= t is >= target
// (strict: > target). F(0) must meet it. 16 passes of 4 bits; compacts the row when it can.
__device__ uint64_t select(Row& r, const Filter& f, double target, bool strict, const Scratch& s) {
  uint64_t base = 0;
  for (int shift = 60; shift >= 0; shift -= 4) {
    double v[kWays];
#pragma unroll
    for (int j = 0; j < kWays; ++j) v[j] = 0.0;
    for_each(r, [&](uint64_t k, float l) {
      double w;
      if (!f.get(k, l, base, w)) return;
      // digit of k at this pass when k shares base's upper bits, else above every threshold
      const uint64_t above = (k - base) >> shift;
      const int d = above >= (uint64_t)kWays ? kWays - 1 : (int)above;
#pragma unroll
      for (int j = 1; j < kWays; ++j) v[j] += j <= d ? w : 0.0;
    });
    block_sum(v, s.d);
    int best = 0;
#pragma unroll
    for (int j = 1; j < kWays; ++j)
      if (strict ? v[j] > target : v[j] >= target) best = j;
    base += (uint64_t)best << shift;
    if (shift > 0) try_compact(r, f.lo, base, s.i);
  }
  return base;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* __restrict__ logits, int64_t n, SampleParams p,
                  const double* __restrict__ uniforms, int32_t* __restrict__ out) {
  __shared__ double dscratch[(kWarps + 1) * kWays];
  __shared__ int iscratch[2 * kWarps];
  __shared__ uint64_t skey[kCap];
  __shared__ float slog[kCap];
  __shared__ unsigned long long smax;
  const int64_t row = blockIdx.x;
  Row r{logits + row * n, n, skey, slog, 0, false};
  const Scratch s{dscratch, iscratch};
  // The first candidate: the largest key (argmax, lowest id on ties).
  if (threadIdx.x == 0) smax = 0;
  __syncthreads();
  uint64_t m = 0;
  for_each(r, [&](uint64_t k, float) { m = k > m ? k : m; });
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const uint64_t o = __shfl_xor_sync(0xffffffffu, m, off);
    m = o > m ? o : m;
  }
  if ((threadIdx.x & 31) == 0) atomicMax(&smax, (unsigned long long)m);
  __syncthreads();
  const uint64_t kmax = smax;
  if (p.temperature <= 0.0f || kmax < ((uint64_t)1 << 32)) {  // greedy, or every logit NaN
    if (threadIdx.x == 0) out[row] = kmax < ((uint64_t)1 << 32) ? 0 : id_of(kmax);
    return;
  }
  Filter f{(uint64_t)1 << 32, r.x[id_of(kmax)], 0.0, 0, (double)p.temperature};
  // top-k: the k-th key
  // (fewer than k non-NaN logits: select finds no key, returns 0, and every non-NaN one stays)
  if (p.top_k > 0 && p.top_k < n) {
    const uint64_t t = select(r, f, (double)p.top_k, false, s);
    f.lo = t > f.lo ? t : f.lo;
    try_compact(r, f.lo, 0, s.i);
  }
  // top-p at temperature 1: the shortest prefix with mass >= top_p of the candidates' mass
  if (p.top_p < 1.0f) {
    f.weight = 1;
    const double z = total(r, f, s);
    const uint64_t t = select(r, f, (double)p.top_p * z, false, s);
    f.lo = t > f.lo ? t : f.lo;
  }
  // min-p: p >= min_p * p_max, i.e. exp(l - lmax) >= min_p
  if (p.min_p > 0.0f) f.min_p = (double)p.min_p;
  // the draw at temperature T: the first candidate whose cumulative weight exceeds u * sum
  f.weight = 2;
  const double z = total(r, f, s);
  double target = uniforms[row] * z;
  if (target >= z) target = nextafter(z, 0.0);  // u * z rounded up to z: the last candidate
  const uint64_t k = select(r, f, target, true, s);
  if (threadIdx.x == 0) out[row] = id_of(k);
}

__global__ void penalty_kernel(float* logits, int64_t n, const int32_t* ids, int n_ids,
                               float penalty) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n_ids) return;
  const int32_t t = ids[i];
  if (t < 0 || t >= n) return;
  const float l = logits[t];
  logits[t] = l > 0 ? l / penalty : l * penalty;
}

}  // namespace

Status apply_repetition_penalty(float* logits, int64_t n, const int32_t* ids, int n_ids,
                                float penalty, cudaStream_t stream) {
  if (!(penalty > 0.0f) || !std::isfinite(penalty))
    return InvalidArgument("apply_repetition_penalty: penalty must be a positive finite number");
  if (n < 1 || n_ids < 0) return InvalidArgument("apply_repetition_penalty: bad sizes");
  if (n_ids == 0) return Status::Ok();
  if (!logits || !ids) return InvalidArgument("apply_repetition_penalty: null pointer");
  constexpr int kT = 128;
  penalty_kernel<<<(unsigned)((n_ids + kT - 1) / kT), kT, 0, stream>>>(logits, n, ids, n_ids,
                                                                       penalty);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("penalty_kernel");
  return Status::Ok();
}

Status sample_rows(const float* logits, int64_t rows, int64_t n, const SampleParams& p,
                   const double* uniforms, int32_t* out, cudaStream_t stream) {
  FRUGAL_RETURN_IF_ERROR(p.validate());
  if (rows < 0 || n < 1 || n > 0x7fffffff)
    return InvalidArgument("sample_rows: rows " + std::to_string(rows) + ", n " +
                           std::to_string(n) + " (need rows >= 0, 1 <= n < 2^31)");
  if (rows == 0) return Status::Ok();
  if (!logits || !out || (!uniforms && p.temperature > 0.0f))
    return InvalidArgument("sample_rows: null pointer");
  if (rows > 0x7fffffff) return InvalidArgument("sample_rows: too many rows");
  sample_kernel<<<(unsigned)rows, kThreads, 0, stream>>>(logits, n, p, uniforms, out);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("sample_kernel");
  return Status::Ok();
}

}  // namespace frugal::cuda
