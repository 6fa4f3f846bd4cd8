// CUDA benchmarks for the decode path on one GPU, each against ceilings measured in the same run:
//   ceilings: cudaMemcpy device-to-device (bytes read + written) and a 16-byte read kernel;
//   gemv:     our BF16 GEMV at Llama-3.1-8B shapes, batch 1 and 8, vs cuBLAS (cublasGemmEx,
//             bf16 inputs, fp32 compute/output) on the same shapes;
//   attention: paged decode (bf16 KV, 32 q heads / 8 KV heads / head_dim 128 and SmolLM2's
//             9 / 3 / 64 and Llama-3.1-70B's 64 / 8 / 128, block size 16,
//             blocks in shuffled order) at contexts 1k/4k/16k, batch 1, 8 and 64; the
//             CUDA-core split kernel (with the merge kernel and with the merge fused into the
//             split kernel), the tensor-core kernel (+ merge kernel) and the one-launch cluster
//             kernel (with the cluster size of its plan), in the same run.
// Inputs are random (never zeros) and rotated among copies totalling >= 1 GiB so no timing is
// an L2 (60 MB) measurement. Time: CUDA events around `iters` launches; median of 7 repeats.
// Output: a log of every measurement, then a short table (the last lines).
//
// Usage: frugal_cuda_bench [--quick] [--only gemv|attention] [--ctx N] [--seqs N[,N..]]
//                          [--shape 8b|d64g3|g8] [--decode-kernels split,mma,mma10,mmanp,cluster]
//   --ctx / --shape restrict the attention cases (for profiling one shape under ncu), --seqs
//   sets the batches (default 1,8,64), --decode-kernels the kernels compared, --cluster the
//   cluster kernel's blocks per cluster (1..16; default: its plan's choice); kernel names
//   mma10 / mmanp: the mma kernel as of v10c / without its tile-pair step (A/B). Batch-1
//   diagnostics: --attn-rot N (cache copies; 1 keeps K/V in L2), --attn-seq-table (tables in
//   pool order); at batch 1 the floors (empty kernels, split kernel without merge) are printed.
#include <cublas_v2.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_decode_mma.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"
#include "backend/cuda/ops.cuh"

using namespace frugal;
using namespace frugal::cuda;

namespace {

constexpr size_t kRotateBytes = size_t{1} << 30;

__global__ void fill_bf16_kernel(uint16_t* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13; h *= 3266489917u; h ^= h >> 16;
    const float f = ((float)(h & 0xffffff) / 16777216.0f * 2.0f - 1.0f) * scale;
    p[i] = (uint16_t)(__float_as_uint(f) >> 16);
  }
}

__global__ void fill_f32_kernel(float* p, size_t n, uint32_t seed) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
    p[i] = (float)(h & 0xffff) / 65536.0f - 0.5f;
  }
}

// Reads every 16-byte vector once; one store per block keeps the loads alive.
// The launch floor of a decode-attention call (graph + PDL): kernels that only wait for the
// previous grid and let the next one launch, on the split and merge kernels' grids.
__global__ void pdl_empty_kernel() {
  wait_prior_grid();
  allow_dependent_launch();
}

__global__ void read_kernel(const uint4* __restrict__ p, size_t n, uint32_t* sink) {
  uint32_t acc = 0;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    const uint4 v = __ldcs(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) sink[blockIdx.x] = acc;
}

#define CHECK_OK(expr)                                                     \
  do {                                                                     \
    const ::frugal::Status st_ = (expr);                                   \
    if (!st_.ok()) {                                                       \
      std::fprintf(stderr, "error: %s\n", st_.to_string().c_str());        \
      return st_;                                                          \
    }                                                                      \
  } while (0)

#define CUBLAS_OK(expr)                                                            \
  do {                                                                             \
    const cublasStatus_t s_ = (expr);                                              \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                               \
      return Internal(std::string("cublas: ") + #expr + " failed: " +              \
                      cublasGetStatusString(s_) + " at " __FILE__);                \
  } while (0)

cudaStream_t g_stream = nullptr;  // every timed launch goes to this stream

// Median milliseconds per call of fn(i) over `iters` calls, 7 repeats after a warm-up.
// graph = true: the `iters` calls are captured once into a CUDA graph and the replays are
// timed, so host launch overhead drops out (the decode step will run as a graph).
Result<double> time_ms(int iters, const std::function<Status(int)>& fn, bool graph = false) {
  cudaEvent_t a, b;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventCreate(&a));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventCreate(&b));
  for (int i = 0; i < std::max(3, iters / 4); ++i) FRUGAL_RETURN_IF_ERROR(fn(i));
  cudaGraphExec_t exec = nullptr;
  if (graph) {
    cudaGraph_t g;
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < iters; ++i) {
      const Status st = fn(i);
      if (!st.ok()) {
        (void)cudaStreamEndCapture(g_stream, &g);
        return st;
      }
    }
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamEndCapture(g_stream, &g));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaGraphInstantiate(&exec, g, 0));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaGraphDestroy(g));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(exec, g_stream));  // warm-up replay
  }
  std::vector<double> v;
  for (int rep = 0; rep < 7; ++rep) {
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(a, g_stream));
    if (graph) {
      FRUGAL_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(exec, g_stream));
    } else {
      for (int i = 0; i < iters; ++i) FRUGAL_RETURN_IF_ERROR(fn(i));
    }
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(b, g_stream));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(b));
    float ms = 0;
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, a, b));
    v.push_back(ms / iters);
  }
  if (exec) (void)cudaGraphExecDestroy(exec);
  (void)cudaEventDestroy(a);
  (void)cudaEventDestroy(b);
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Status fill_bf16(uint16_t* p, size_t n, uint32_t seed, float scale) {
  fill_bf16_kernel<<<1024, 256, 0, g_stream>>>(p, n, seed, scale);
  FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("fill_bf16_kernel");
  return Status::Ok();
}

struct Row {
  std::string what, ours, ref, ratio;
};
std::vector<Row> g_table;

char* fmt(const char* f, double a, double b = 0) {
  static char buf[8][64];
  static int k = 0;
  k = (k + 1) % 8;
  std::snprintf(buf[k], 64, f, a, b);
  return buf[k];
}

struct Ceilings {
  double copy_gbs = 0, read_gbs = 0;
};

Result<Ceilings> measure_ceilings(bool quick) {
  Ceilings c;
  const size_t bytes = size_t{2} << 30;  // 2 GiB each way
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer src, DeviceBuffer::allocate(bytes));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer dst, DeviceBuffer::allocate(bytes));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer sink, DeviceBuffer::allocate(1 << 20));
  FRUGAL_RETURN_IF_ERROR(fill_bf16(src.as<uint16_t>(), bytes / 2, 1, 1.0f));
  FRUGAL_ASSIGN_OR_RETURN(double ms, time_ms(quick ? 3 : 10, [&](int) -> Status {
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst.data(), src.data(), bytes,
                                                cudaMemcpyDeviceToDevice, g_stream));
    return Status::Ok();
  }));
  c.copy_gbs = 2.0 * bytes / (ms * 1e6);
  FRUGAL_ASSIGN_OR_RETURN(const int sms, current_num_sms());
  FRUGAL_ASSIGN_OR_RETURN(double ms_r, time_ms(quick ? 3 : 10, [&](int) -> Status {
    read_kernel<<<sms * 8, 512, 0, g_stream>>>(src.as<uint4>(), bytes / 16, sink.as<uint32_t>());
    FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("read_kernel");
    return Status::Ok();
  }));
  c.read_gbs = bytes / (ms_r * 1e6);
  std::printf("ceiling: cudaMemcpy D2D %.0f GB/s (read+write of %zu MiB), read kernel %.0f GB/s\n",
              c.copy_gbs, bytes >> 20, c.read_gbs);
  g_table.push_back({"copy D2D / read kernel GB/s", fmt("%.0f", c.copy_gbs), fmt("%.0f", c.read_gbs), "-"});
  return c;
}

Status bench_gemv(const Ceilings& ceil, bool quick) {
  cublasHandle_t handle;
  CUBLAS_OK(cublasCreate(&handle));
  CUBLAS_OK(cublasSetStream(handle, g_stream));
  struct Shape { int64_t rows, cols; const char* name; };
  const Shape shapes[] = {{4096, 4096, "attn q/o 4096x4096"},
                          {14336, 4096, "ffn gate/up 14336x4096"},
                          {4096, 14336, "ffn down 4096x14336"},
                          {128256, 4096, "lm_head 128256x4096"}};
  for (const Shape& s : shapes) {
    const size_t wbytes = (size_t)s.rows * s.cols * 2;
    const int copies = (int)std::max<size_t>(2, (kRotateBytes + wbytes - 1) / wbytes);
    FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer w, DeviceBuffer::allocate(wbytes * copies));
    FRUGAL_RETURN_IF_ERROR(fill_bf16(w.as<uint16_t>(), wbytes * copies / 2, 7, 0.05f));
    for (int batch : {1, 8}) {
      FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::allocate((size_t)batch * s.cols * 4));
      FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer xb, DeviceBuffer::allocate((size_t)batch * s.cols * 2));
      FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer y, DeviceBuffer::allocate((size_t)batch * s.rows * 4));
      fill_f32_kernel<<<256, 256, 0, g_stream>>>(x.as<float>(), (size_t)batch * s.cols, 3);
      FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("fill_f32_kernel");
      FRUGAL_RETURN_IF_ERROR(fill_bf16(xb.as<uint16_t>(), (size_t)batch * s.cols, 5, 1.0f));
      const int iters = quick ? 10 : std::max(20, copies * 2);
      auto wptr = [&](int i) { return w.as<uint16_t>() + (size_t)(i % copies) * s.rows * s.cols; };
      auto ours = [&](int i) {
        return gemv_bf16({wptr(i), s.rows, s.cols, x.as<float>(), batch, y.as<float>()},
                         g_stream);
      };
      // warp-row kernel, then the streaming kernel (gemv v4), same process, same weights
      const GemvTuning saved = gemv_tuning();
      GemvTuning tu = saved;
      tu.kernel = GemvKernel::kWarpRows;
      set_gemv_tuning(tu);
      FRUGAL_ASSIGN_OR_RETURN(double ms, time_ms(iters, ours));
      FRUGAL_ASSIGN_OR_RETURN(double ms_graph, time_ms(iters, ours, /*graph=*/true));
      tu.kernel = GemvKernel::kStream;
      tu.stream_max_batch = kGemvMaxBatch;  // the default keeps batch >= 3 on warp-row
      set_gemv_tuning(tu);
      FRUGAL_ASSIGN_OR_RETURN(double ms_st, time_ms(iters, ours));
      FRUGAL_ASSIGN_OR_RETURN(double ms_st_graph, time_ms(iters, ours, /*graph=*/true));
      set_gemv_tuning(saved);
      const float alpha = 1.0f, beta = 0.0f;
      Status cublas_status;
      FRUGAL_ASSIGN_OR_RETURN(double ms_cb, time_ms(iters, [&](int i) -> Status {
        // column-major view: Y^T[rows, batch] = W^T(op T of col-major [cols, rows]) * X^T
        CUBLAS_OK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, (int)s.rows, batch, (int)s.cols,
                               &alpha, wptr(i), CUDA_R_16BF, (int)s.cols, xb.data(),
                               CUDA_R_16BF, (int)s.cols, &beta, y.data(), CUDA_R_32F,
                               (int)s.rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return Status::Ok();
      }));
      const double gbs = wbytes / (ms * 1e6), gbs_cb = wbytes / (ms_cb * 1e6);
      const double gbs_graph = wbytes / (ms_graph * 1e6);
      std::printf("gemv %-24s batch %d: ours %8.2f us %6.0f GB/s (%.2f of read, %.2f of copy) | "
                  "graph %8.2f us %6.0f GB/s | cuBLAS %8.2f us %6.0f GB/s | ours/cuBLAS %.2fx "
                  "(%d weight copies rotated)\n",
                  s.name, batch, ms * 1e3, gbs, gbs / ceil.read_gbs, gbs / ceil.copy_gbs,
                  ms_graph * 1e3, gbs_graph, ms_cb * 1e3, gbs_cb, ms_cb / ms, copies);
      const double gbs_st = wbytes / (ms_st * 1e6), gbs_st_graph = wbytes / (ms_st_graph * 1e6);
      std::printf("gemv %-24s batch %d: stream %8.2f us %6.0f GB/s (%.2f of copy) | graph "
                  "%8.2f us %6.0f GB/s (%.2f of copy) | stream/warp-row graph %.3fx\n",
                  s.name, batch, ms_st * 1e3, gbs_st, gbs_st / ceil.copy_gbs, ms_st_graph * 1e3,
                  gbs_st_graph, gbs_st_graph / ceil.copy_gbs, ms_graph / ms_st_graph);
      g_table.push_back({std::string("gemv ") + s.name + " b" + std::to_string(batch) +
                             " stream GB/s",
                         fmt("%.0f / %.0f", gbs_st, gbs_st_graph), fmt("%.0f", gbs_cb),
                         fmt("%.2f copy, %.2fx warp-row (graph)", gbs_st_graph / ceil.copy_gbs,
                             ms_graph / ms_st_graph)});
      g_table.push_back({std::string("gemv ") + s.name + " b" + std::to_string(batch) + " GB/s",
                         fmt("%.0f / %.0f", gbs, gbs_graph), fmt("%.0f", gbs_cb),
                         fmt("%.2f copy, %.2fx cuBLAS", gbs / ceil.copy_gbs, ms_cb / ms)});
    }
  }
  (void)cublasDestroy(handle);
  return Status::Ok();
}

int g_only_ctx = 0;
std::vector<int> g_seqs = {1, 8, 64};
bool g_kernel_on[4] = {false, true, true, true};  // indexed by kDecodeSplit / Mma / Cluster
// kDecodeMma variants for A/B (attention.cuh): mma10 = the v10c kernels (mma_v10, no tile
// pairs, merge without early launch), mmanp = the current kernel without tile pairs
bool g_mma10_on = false, g_mmanp_on = false;
// Diagnostics of the batch-1 latency: --attn-rot N: N copies of the caches instead of >= 1 GiB
// (1: the K/V stay in L2 between calls); --attn-seq-table: block tables in pool order (each
// sequence's blocks contiguous) instead of shuffled over the pool.
int g_attn_rot = 0;
bool g_attn_seq_table = false;
int g_cluster_size = 0;  // --cluster N: the cluster kernel's blocks per cluster (0: its plan's)
std::string g_only_shape;  // "8b", "d64g3" or "g8": one attention shape

struct AttnShape {
  const char* name;
  int H, KV, D;
};

Status bench_attention(const Ceilings& ceil, bool quick) {
  const int BS = 16;
  // Llama-3.1-8B heads, and SmolLM2's (head_dim 64, query group 3)
  // and Llama-3.1-70B's (query group 8: the mma kernel's second-fragment layout)
  for (const AttnShape& shape : {AttnShape{"", 32, 8, 128}, AttnShape{"d64g3 ", 9, 3, 64},
                                 AttnShape{"g8 ", 64, 8, 128}}) {
    const int H = shape.H, KV = shape.KV, D = shape.D;
    const std::string sname = shape.name;
    if (!g_only_shape.empty() && g_only_shape + " " != shape.name &&
        !(g_only_shape == "8b" && shape.name[0] == 0))
      continue;
    for (int ctx : {1024, 4096, 16384}) {
      for (int n_seqs : g_seqs) {
        if (g_only_ctx && ctx != g_only_ctx) continue;
        const size_t seq_bytes = (size_t)ctx * KV * D * 2 * 2;  // K + V, bf16
        const int rot = g_attn_rot > 0
                            ? g_attn_rot
                            : (int)std::max<size_t>(2, kRotateBytes / (seq_bytes * n_seqs));
        const int blocks_per_seq = ctx / BS;
        const int64_t n_blocks = (int64_t)rot * n_seqs * blocks_per_seq;
        const size_t cache_elems = (size_t)n_blocks * BS * KV * D;
        FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer k, DeviceBuffer::allocate(cache_elems * 2));
        FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer v, DeviceBuffer::allocate(cache_elems * 2));
        FRUGAL_RETURN_IF_ERROR(fill_bf16(k.as<uint16_t>(), cache_elems, 11, 2.0f));
        FRUGAL_RETURN_IF_ERROR(fill_bf16(v.as<uint16_t>(), cache_elems, 13, 1.0f));
        std::vector<int32_t> tables((size_t)n_blocks);
        std::iota(tables.begin(), tables.end(), 0);
        if (!g_attn_seq_table) std::shuffle(tables.begin(), tables.end(), std::mt19937(1));
        FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer dt, DeviceBuffer::allocate(tables.size() * 4));
        FRUGAL_RETURN_IF_ERROR(dt.upload(tables.data(), tables.size() * 4));
        std::vector<int32_t> lens((size_t)n_seqs, ctx);
        FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer dl, DeviceBuffer::allocate(lens.size() * 4));
        FRUGAL_RETURN_IF_ERROR(dl.upload(lens.data(), lens.size() * 4));
        FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::allocate((size_t)n_seqs * H * D * 4));
        FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer out,
                                DeviceBuffer::allocate((size_t)n_seqs * H * D * 4));
        fill_f32_kernel<<<64, 256, 0, g_stream>>>(q.as<float>(), (size_t)n_seqs * H * D, 17);
        FRUGAL_CUDA_RETURN_IF_LAUNCH_ERROR("fill_f32_kernel");
        PagedDecodeParams p;
        p.q = q.as<float>();
        p.out = out.as<float>();
        p.k_cache = k.as<uint16_t>();
        p.v_cache = v.as<uint16_t>();
        p.seq_lens = dl.as<int32_t>();
        p.max_blocks_per_seq = blocks_per_seq;
        p.n_blocks = n_blocks;
        p.n_seqs = n_seqs;
        p.n_heads = H;
        p.n_kv_heads = KV;
        p.head_dim = D;
        p.block_size = BS;
        p.max_seq_len = ctx;
        p.block_tables = dt.as<int32_t>();
        const int iters = quick ? 10 : std::max(20, rot * 2);
        const double bytes = (double)seq_bytes * n_seqs;
        // A/B in the same run: the CUDA-core split kernel (v4), the tensor-core kernel and the
        // cluster kernel.
        double ms_kernel[4] = {0, 0, 0, 0}, ms_kernel_pdl[4] = {0, 0, 0, 0};
        double ms_mma10_pdl = 0;
        // variant 0 split, 1 mma10, 2 mmanp, 3 mma, 4 cluster
        for (int variant = 0; variant < 5; ++variant) {
          const int kernel = variant == 0   ? kDecodeSplit
                             : variant == 4 ? kDecodeCluster
                                            : kDecodeMma;
          if (!(variant == 1 ? g_mma10_on : variant == 2 ? g_mmanp_on : g_kernel_on[kernel]))
            continue;
          const char* kname = variant == 1   ? "mma10"
                              : variant == 2 ? "mmanp"
                              : variant == 3 ? "mma"
                              : variant == 4 ? "clust"
                                             : "split";
          PagedDecodeParams pk = p;
          pk.kernel = kernel;
          pk.mma_v10 = variant == 1;
          pk.mma_tile_pairs = variant >= 3;
          pk.merge_early_launch = variant >= 2;
          if (pk.kernel == kDecodeCluster) pk.cluster_size = g_cluster_size;
          FRUGAL_ASSIGN_OR_RETURN(PagedDecodePlan plan, plan_paged_decode(pk));
          FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer ws, DeviceBuffer::allocate(plan.workspace_bytes));
          pk.workspace = ws.data();
          pk.workspace_bytes = ws.size();
          auto ours = [&](int i) {
            PagedDecodeParams pi = pk;
            pi.block_tables = dt.as<int32_t>() + (size_t)(i % rot) * n_seqs * blocks_per_seq;
            return paged_attention_decode(pi, g_stream);
          };
          FRUGAL_ASSIGN_OR_RETURN(double ms, time_ms(iters, ours));
          FRUGAL_ASSIGN_OR_RETURN(double ms_graph, time_ms(iters, ours, /*graph=*/true));
          if (variant != 1 && variant != 2) ms_kernel[kernel] = ms_graph;
          const double gbs = bytes / (ms * 1e6), gbs_graph = bytes / (ms_graph * 1e6);
          std::printf("attention %s%-5s ctx %5d seqs %2d: %8.2f us  %6.0f GB/s  %.2f of copy  "
                      "%.2f of read | graph %8.2f us %6.0f GB/s %.2f of copy (split %d x %d, "
                      "cluster %d, %d rotations)\n",
                      shape.name, kname, ctx, n_seqs, ms * 1e3, gbs, gbs / ceil.copy_gbs,
                      gbs / ceil.read_gbs,
                      ms_graph * 1e3, gbs_graph, gbs_graph / ceil.copy_gbs, plan.n_splits,
                      plan.split_size, plan.cluster_size, rot);
          g_table.push_back({"paged attn " + sname + kname + " ctx " + std::to_string(ctx) +
                                 " b" + std::to_string(n_seqs) + " GB/s",
                             fmt("%.0f / %.0f", gbs, gbs_graph), "-",
                             fmt("%.2f / %.2f copy", gbs / ceil.copy_gbs,
                                 gbs_graph / ceil.copy_gbs)});
          if (kernel != kDecodeSplit) {
            // the same graph with programmatic dependent launch (as LlamaCuda runs its decode
            // step): the merge kernel's launch overlaps the split kernel; the cluster kernel's
            // next call loads its block-table entries during this one
            double ms_pdl = 0;
            {
              const ProgrammaticLaunchScope pdl(true);
              FRUGAL_ASSIGN_OR_RETURN(ms_pdl, time_ms(iters, ours, /*graph=*/true));
            }
            const double gbs_pdl = bytes / (ms_pdl * 1e6);
            if (variant == 1) ms_mma10_pdl = ms_pdl;
            if (variant != 1 && variant != 2) ms_kernel_pdl[kernel] = ms_pdl;
            std::printf("attention %s%-5s ctx %5d seqs %2d, graph + PDL: %8.2f us %6.0f GB/s "
                        "%.2f of copy (%.2fx the graph without PDL)\n",
                        shape.name, kname, ctx, n_seqs, ms_pdl * 1e3, gbs_pdl,
                        gbs_pdl / ceil.copy_gbs, ms_graph / ms_pdl);
            g_table.push_back({"paged attn " + sname + kname + " ctx " + std::to_string(ctx) + " b" +
                                   std::to_string(n_seqs) + " GB/s (graph + PDL)",
                               fmt("%.0f", gbs_pdl), "-",
                               fmt("%.2f copy", gbs_pdl / ceil.copy_gbs)});
          }
          if (kernel != kDecodeSplit) continue;
          // the merge fused into the last split block (atomic tickets; no merge kernel)
          std::vector<int32_t> zeros((size_t)n_seqs * KV, 0);
          FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer ctr, DeviceBuffer::allocate(zeros.size() * 4));
          FRUGAL_RETURN_IF_ERROR(ctr.upload(zeros.data(), zeros.size() * 4));
          auto fused = [&](int i) {
            PagedDecodeParams pi = pk;
            pi.block_tables = dt.as<int32_t>() + (size_t)(i % rot) * n_seqs * blocks_per_seq;
            pi.split_counters = ctr.as<int32_t>();
            return paged_attention_decode(pi, g_stream);
          };
          FRUGAL_ASSIGN_OR_RETURN(double ms_fused, time_ms(iters, fused, /*graph=*/true));
          const double gbs_fused = bytes / (ms_fused * 1e6);
          std::printf("attention %ssplit ctx %5d seqs %2d, fused merge, graph: %8.2f us %6.0f GB/s "
                      "%.2f of copy (%.2fx the two-kernel graph)\n",
                      shape.name, ctx, n_seqs, ms_fused * 1e3, gbs_fused, gbs_fused / ceil.copy_gbs,
                      ms_graph / ms_fused);
          g_table.push_back({"paged attn " + sname + "split ctx " + std::to_string(ctx) + " b" +
                                 std::to_string(n_seqs) + " fused merge GB/s (graph)",
                             fmt("%.0f", gbs_fused), "-",
                             fmt("%.2f copy", gbs_fused / ceil.copy_gbs)});
        }
        if (g_kernel_on[kDecodeMma] && n_seqs == 1) {
          // Where the batch-1 time goes (graph + PDL): the empty split + merge pair, the empty
          // split kernel alone, and the mma split kernel without its merge kernel.
          PagedDecodeParams pk = p;
          pk.kernel = kDecodeMma;
          FRUGAL_ASSIGN_OR_RETURN(PagedDecodePlan plan, plan_paged_decode(pk));
          FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer ws, DeviceBuffer::allocate(plan.workspace_bytes));
          pk.workspace = ws.data();
          pk.workspace_bytes = ws.size();
          const dim3 split_grid(plan.n_splits, KV, n_seqs), merge_grid(H, n_seqs);
          const ProgrammaticLaunchScope pdl(true);
          double ms_floor[3] = {0, 0, 0};
          for (int f = 0; f < 3; ++f) {
            auto call = [&](int i) -> Status {
              if (f == 2) {
                PagedDecodeParams pi = pk;
                pi.block_tables = dt.as<int32_t>() + (size_t)(i % rot) * n_seqs * blocks_per_seq;
                return launch_paged_decode_mma(pi, plan, g_stream);
              }
              FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(pdl_empty_kernel, split_grid, dim3(128),
                                                        0, g_stream));
              if (f == 0)
                FRUGAL_CUDA_RETURN_IF_ERROR(launch_kernel(pdl_empty_kernel, merge_grid,
                                                          dim3(256), 0, g_stream));
              return Status::Ok();
            };
            FRUGAL_ASSIGN_OR_RETURN(ms_floor[f], time_ms(iters, call, /*graph=*/true));
          }
          std::printf("attention %sctx %5d seqs %2d, graph + PDL floor: empty split+merge %.2f us, "
                      "empty split %.2f us, mma split kernel without merge %.2f us (%.2f of copy)\n",
                      shape.name, ctx, n_seqs, ms_floor[0] * 1e3, ms_floor[1] * 1e3,
                      ms_floor[2] * 1e3, bytes / (ms_floor[2] * 1e6) / ceil.copy_gbs);
        }
        if (ms_mma10_pdl > 0 && ms_kernel_pdl[kDecodeMma] > 0)
          std::printf("attention %sctx %5d seqs %2d: mma / mma10 speed (graph + PDL) %.3fx\n",
                      shape.name, ctx, n_seqs, ms_mma10_pdl / ms_kernel_pdl[kDecodeMma]);
        if (ms_kernel[kDecodeSplit] > 0 && ms_kernel[kDecodeMma] > 0)
          std::printf("attention %sctx %5d seqs %2d: mma / split speed (graph) %.2fx\n",
                      shape.name, ctx, n_seqs, ms_kernel[kDecodeSplit] / ms_kernel[kDecodeMma]);
        PagedDecodeParams pa = p;
        pa.kernel = kDecodeAuto;
        FRUGAL_ASSIGN_OR_RETURN(const PagedDecodePlan auto_plan, plan_paged_decode(pa));
        if (ms_kernel[kDecodeMma] > 0 && ms_kernel[kDecodeCluster] > 0)
          std::printf("attention %sctx %5d seqs %2d: cluster / mma speed: graph %.2fx, graph + "
                      "PDL %.2fx; auto rule: %s\n",
                      shape.name, ctx, n_seqs, ms_kernel[kDecodeMma] / ms_kernel[kDecodeCluster],
                      ms_kernel_pdl[kDecodeMma] / ms_kernel_pdl[kDecodeCluster],
                      auto_plan.kernel == kDecodeCluster ? "cluster" : "mma");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (i + 1 < argc && a == "--only") {
      only = argv[++i];
    } else if (i + 1 < argc && a == "--ctx") {
      g_only_ctx = std::atoi(argv[++i]);
    } else if (i + 1 < argc && a == "--seqs") {
      g_seqs.clear();
      for (const char* t = argv[++i]; *t;) {
        g_seqs.push_back(std::max(1, std::atoi(t)));
        while (*t && *t != ',') ++t;
        if (*t == ',') ++t;
      }
    } else if (i + 1 < argc && a == "--attn-rot") {
      g_attn_rot = std::atoi(argv[++i]);
    } else if (a == "--attn-seq-table") {
      g_attn_seq_table = true;
    } else if (i + 1 < argc && a == "--cluster") {
      g_cluster_size = std::atoi(argv[++i]);
    } else if (i + 1 < argc && a == "--decode-kernels") {
      const std::string k = "," + std::string(argv[++i]) + ",";
      g_kernel_on[kDecodeSplit] = k.find(",split,") != std::string::npos;
      g_kernel_on[kDecodeMma] = k.find(",mma,") != std::string::npos;
      g_kernel_on[kDecodeCluster] = k.find(",cluster,") != std::string::npos;
      g_mma10_on = k.find(",mma10,") != std::string::npos;
      g_mmanp_on = k.find(",mmanp,") != std::string::npos;
    } else if (i + 1 < argc && a == "--shape") {
      g_only_shape = argv[++i];
    } else {
      std::fprintf(stderr, "usage: frugal_cuda_bench [--quick] [--only gemv|attention] "
                           "[--ctx N] [--seqs N[,N..]] [--shape 8b|d64g3|g8] "
                           "[--decode-kernels split,mma,mma10,mmanp,cluster] [--cluster N] "
                           "[--attn-rot N] [--attn-seq-table]\n");
      return 2;
    }
  }
  if (device_count() == 0) {
    std::fprintf(stderr, "frugal_cuda_bench: no CUDA device\n");
    return 2;
  }
  auto info = device_info(0);
  if (!info.ok()) {
    std::fprintf(stderr, "error: %s\n", info.status().to_string().c_str());
    return 1;
  }
  std::printf("device: %s, sm_%d%d, %d SMs, %.1f GiB, L2 %zu MiB\n", info->name, info->sm_major,
              info->sm_minor, info->num_sms, info->total_bytes / 1073741824.0,
              info->l2_bytes >> 20);
  if (cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking) != cudaSuccess) {
    std::fprintf(stderr, "error: cudaStreamCreate failed\n");
    return 1;
  }
  auto ceil = measure_ceilings(quick);
  if (!ceil.ok()) {
    std::fprintf(stderr, "error: %s\n", ceil.status().to_string().c_str());
    return 1;
  }
  const Status st_gemv = only == "attention" ? Status::Ok() : bench_gemv(*ceil, quick);
  const Status st = !st_gemv.ok() ? st_gemv
                    : only == "gemv" ? Status::Ok()
                                     : bench_attention(*ceil, quick);
  std::printf("\n%-40s | %-17s | %11s | %s\n", "measurement", "frugal stream/graph",
              "cuBLAS/read", "ratio (stream)");
  for (const Row& r : g_table)
    std::printf("%-40s | %-19s | %11s | %s\n", r.what.c_str(), r.ours.c_str(), r.ref.c_str(),
                r.ratio.c_str());
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
    return 1;
  }
  return 0;
}
