// Whole-model GPU benchmarks with dummy weights (random bf16, generated on the device) of a
// preset architecture (default Llama-3.1-8B), each against ceilings measured in the same run:
//   ceilings: cudaMemcpy device-to-device (bytes read + written, 2 GiB each way) and a cuBLAS
//             BF16 GEMM 8192^3 (bf16 in, float out, float accumulation: the prefill GEMMs' mode);
//   decode:   batch B at context C (the KV cache filled with random values, every sequence at
//             position C), `steps` steps replayed from a CUDA graph with no host round trip
//             (argmax -> next token on the device), and at batch 1 also as eager launches.
//             Roofline = (weight bytes + KV bytes read and written + logits) / copy bandwidth;
//             ratio = roofline time / measured time.
//   prefill:  T prompt tokens in one chunk (host call to argmax), TFLOP/s counting 2 flops per
//             weight per token plus causal attention (4 * heads * head_dim * T(T+1)/2 per layer),
//             against the cuBLAS GEMM rate;
//   attention: the causal prefill attention alone (the split-K kernel, FA2, the wgmma kernels
//             and the FA3-structured ones at KV block size 16 with a shuffled table, then the
//             FA3 kernels at block sizes 16 / 32 / 64 contiguous and 32 / 64 / 128 shuffled),
//             TFLOP/s with the flop count of bench/cuda/torch_compare.py's SDPA rows;
//   also:     the batch-1 step's GEMVs alone in a graph (what the step would cost if nothing
//             else did), Llama-3.1-70B batch-1 decode (it fits in BF16), and a configuration
//             that does not fit (the error names the bytes).
//   GEMV A/B (batch 1, same binary and run): the GEMV kernel and its launch choices
//             (GemvTuning: warp-row vs streaming kernel, PDL trigger, blocks per SM),
//             folded-norm (unit) vs loaded norm weights, fused vs unfused.
// Time: CUDA events (decode) or wall clock around a synchronous call (prefill); median of 3
// repeats after a warm-up.
//
// Usage: frugal_cuda_model_bench [--arch NAME] [--quick]
//            [--only decode|decode-b1|prefill|attention|ncu] [--no-gemv-ab]
//            [--decode-attn split|mma]
//   decode-b1: the GEMV chains, batch 1 at ctx 1k / 4k and Llama-3.1-70B batch 1 (A/B tables:
//              GEMV launch choices, skipped with --no-gemv-ab);
//   ncu: one plain and one fused (unit-norm) chain as eager launches, nothing timed (for ncu).
#include <cublas_v2.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_prefill_wgmma.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/memory.cuh"
#include "backend/cuda/model_ops.cuh"
#include "backend/cuda/ops.cuh"
#include "model/cuda/bench_measure.h"
#include "model/cuda/llama_cuda.cuh"
#include "model/cuda/dummy.h"

using namespace frugal;
using namespace frugal::cuda;

namespace {

struct Row {
  std::string what, value, ratio;
};
std::vector<Row> g_table;
// --prefill-ab: the whole-model prefill once per prefill attention kernel listed here, in
// the same process (one model); empty: once, with the current rule
std::vector<std::pair<std::string, int>> g_prefill_ab;
bool g_gemv_ab = true;  // --no-gemv-ab: skip the GEMV launch-choice A/B at batch 1

struct NamedTuning {
  const char* name;
  GemvTuning t;
};
// The first: the warp-row kernel with gemv v3's launch choices (no early trigger, 2 KiB
// prefetched per row; its other choices lost in gemv v3: dev/cuda/NOTES.md); then the
// streaming kernel (gemv v4): blocks per SM x ring depth x early PDL trigger; the default last.
const NamedTuning kTunings[] = {
    {"warp-row, no trigger, 2K prefetch", {false, 2048, GemvKernel::kWarpRows, 1}},
    {"stream, 1 block/SM, 3 stages", {false, 2048, GemvKernel::kStream, 1, 3}},
    {"stream, 1 block/SM, 6 stages", {false, 2048, GemvKernel::kStream, 1, 6}},
    {"stream, 2 blocks/SM, no trigger", {false, 2048, GemvKernel::kStream, 2, 3}},
    {"stream, 3 blocks/SM, 2 stages, trigger", {true, 2048, GemvKernel::kStream, 3, 2}},
    {"stream, 2 blocks/SM, trigger (default)", {true, 2048, GemvKernel::kStream, 2, 3}},
};

std::string fmt(const char* f, double a, double b = 0, double c = 0) {
  char buf[128];
  std::snprintf(buf, sizeof buf, f, a, b, c);
  return buf;
}

// The ceilings (model/cuda/bench_measure.h, shared with `frugal bench --device cuda`), printed
// and added to the table.
Result<Ceilings> ceilings_row(cudaStream_t s) {
  FRUGAL_ASSIGN_OR_RETURN(const Ceilings c, measure_ceilings(s));
  std::printf("ceiling: cudaMemcpy D2D %.0f GB/s (read+write), cuBLAS bf16 GEMM 8192^3 %.0f TFLOP/s\n",
              c.copy_gbs, c.gemm_tflops);
  g_table.push_back({"copy D2D GB/s | cuBLAS bf16 GEMM TFLOP/s",
                     fmt("%.0f | %.0f", c.copy_gbs, c.gemm_tflops), "ceilings"});
  return c;
}

// Decode timing: time_decode (model/cuda/bench_measure.h).

// The projections of one batch-1 decode step alone (per layer: fused QKV, o, fused gate|up,
// down; then the LM head) as our GEMV in one CUDA graph, weights rotated over 4 layer copies
// (1.7 GB, far past L2): what the step would take with zero cost for everything else.
Status bench_gemv_chain(const LlamaDims& d, const Ceilings& c, bool ncu_only = false) {
  struct M { int64_t rows, cols; };
  const M mats[] = {{d.qkv_dim(), d.dim}, {d.dim, d.q_dim()}, {2 * d.hidden, d.dim},
                    {d.dim, d.hidden}};
  const int copies = 4;
  std::vector<DeviceBuffer> w;
  for (int i = 0; i < copies; ++i)
    for (const M& m : mats) {
      FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate((size_t)m.rows * m.cols * 2));
      FRUGAL_RETURN_IF_ERROR(fill_random_bf16(b.as<uint16_t>(), (size_t)m.rows * m.cols, i, 0.02f));
      w.push_back(std::move(b));
    }
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer head, DeviceBuffer::allocate((size_t)d.vocab * d.dim * 2));
  FRUGAL_RETURN_IF_ERROR(fill_random_bf16(head.as<uint16_t>(), (size_t)d.vocab * d.dim, 9, 0.02f));
  const int64_t wide = std::max({d.dim, d.qkv_dim(), 2 * d.hidden, d.vocab});
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::allocate((size_t)wide * 4));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer y, DeviceBuffer::allocate((size_t)wide * 4));
  FRUGAL_RETURN_IF_ERROR(fill_f32(x.as<float>(), (size_t)wide, 0.5f));
  cudaStream_t s;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  // The fused variant (what the fused decode step runs): RMSNorm + QKV + RoPE/K-V write,
  // o + residual add, RMSNorm + gate|up + SwiGLU, down + residual add, RMSNorm + LM head.
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer xres, DeviceBuffer::allocate((size_t)wide * 4));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer hbuf, DeviceBuffer::allocate((size_t)wide * 4));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer qbuf, DeviceBuffer::allocate((size_t)wide * 4));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer normw, DeviceBuffer::allocate((size_t)d.dim * 4));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer kvc, DeviceBuffer::allocate((size_t)2 * 16 * d.kv_dim() * 2));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer ropet, DeviceBuffer::allocate((size_t)16 * d.head_dim / 2 * 8));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer ints, DeviceBuffer::allocate(256));
  FRUGAL_RETURN_IF_ERROR(fill_f32(xres.as<float>(), (size_t)wide, 0.5f));
  FRUGAL_RETURN_IF_ERROR(fill_f32(hbuf.as<float>(), (size_t)wide, 0.5f));
  FRUGAL_RETURN_IF_ERROR(fill_f32(normw.as<float>(), (size_t)d.dim, 1.0f));
  FRUGAL_RETURN_IF_ERROR(ints.fill_bytes(0));  // position 0, block 0
  FRUGAL_RETURN_IF_ERROR(rope_table(ropet.as<float2>(), 16, d.head_dim, d.rope_base));
  RopeKvWriteParams rk;
  rk.q_out = qbuf.as<float>();
  rk.k_cache = kvc.as<uint16_t>();
  rk.v_cache = kvc.as<uint16_t>() + 16 * d.kv_dim();
  rk.positions = ints.as<int32_t>();
  rk.block_tables = ints.as<int32_t>();
  rk.max_blocks_per_seq = 1;
  rk.n_blocks = 1;
  rk.block_size = 16;
  rk.rope = ropet.as<float2>();
  rk.rope_positions = 16;
  rk.rope_half = d.rope_half;
  rk.n = 1;
  rk.n_heads = d.n_heads;
  rk.n_kv_heads = d.n_kv_heads;
  rk.head_dim = d.head_dim;
  bool unit = false;  // fused chains: norms folded into the weights (kRmsNormUnit)
  auto fgemv = [&](const uint16_t* wp, int64_t rows, int64_t cols, const float* in, float* out,
                   bool norm, GemvOutput mode) {
    GemvFusedParams f;
    f.gemv = {wp, rows, cols, in, 1, out};
    f.input = !norm ? GemvInput::kPlain : unit ? GemvInput::kRmsNormUnit : GemvInput::kRmsNorm;
    f.norm_w = normw.as<float>();
    f.output = mode;
    f.rope_kv = &rk;
    return gemv_bf16_fused(f, s);
  };
  auto chain = [&](bool fused) -> Status {
    for (int l = 0; l < d.n_layers; ++l)
      for (int j = 0; j < 4; ++j) {
        const M& m = mats[j];
        const uint16_t* wp = w[(size_t)((l % copies) * 4 + j)].as<uint16_t>();
        if (!fused) {
          FRUGAL_RETURN_IF_ERROR(gemv_bf16({wp, m.rows, m.cols, x.as<float>(), 1, y.as<float>()}, s));
        } else if (j == 0) {
          FRUGAL_RETURN_IF_ERROR(
              fgemv(wp, m.rows, m.cols, xres.as<float>(), y.as<float>(), true, GemvOutput::kRopeKv));
        } else if (j == 1) {
          FRUGAL_RETURN_IF_ERROR(
              fgemv(wp, m.rows, m.cols, x.as<float>(), xres.as<float>(), false, GemvOutput::kAdd));
        } else if (j == 2) {
          FRUGAL_RETURN_IF_ERROR(
              fgemv(wp, m.rows, m.cols, xres.as<float>(), hbuf.as<float>(), true, GemvOutput::kSwiglu));
        } else {
          FRUGAL_RETURN_IF_ERROR(
              fgemv(wp, m.rows, m.cols, hbuf.as<float>(), xres.as<float>(), false, GemvOutput::kAdd));
        }
      }
    if (fused)
      return fgemv(head.as<uint16_t>(), d.vocab, d.dim, xres.as<float>(), y.as<float>(), true,
                   GemvOutput::kStore);
    return gemv_bf16({head.as<uint16_t>(), d.vocab, d.dim, x.as<float>(), 1, y.as<float>()}, s);
  };
  const GemvTuning saved = gemv_tuning();
  if (ncu_only) {  // one eager pass of each chain: plain, then fused with unit norms
    unit = true;
    FRUGAL_RETURN_IF_ERROR(chain(false));
    FRUGAL_RETURN_IF_ERROR(chain(true));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
    (void)cudaStreamDestroy(s);
    return Status::Ok();
  }
  // chains: 0 plain, 1 fused with norm-weight loads, 2 fused with folded (unit) norms
  for (const NamedTuning& tu : kTunings)
  for (int variant = 0; variant < 3; ++variant) {
    const int fused = variant > 0;
    unit = variant == 2;
    set_gemv_tuning(tu.t);
    cudaGraph_t graph;
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    const Status st = chain(fused);
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamEndCapture(s, &graph));
    FRUGAL_RETURN_IF_ERROR(st);
    cudaGraphExec_t exec;
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaGraphInstantiate(&exec, graph, 0));
    cudaEvent_t e0, e1;
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e0));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e1));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(exec, s));
    std::vector<double> t;
    for (int rep = 0; rep < 5; ++rep) {
      FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(e0, s));
      for (int i = 0; i < 4; ++i) FRUGAL_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(exec, s));
      FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(e1, s));
      FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(e1));
      float ms = 0;
      FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, e0, e1));
      t.push_back(ms / 4);
    }
    (void)cudaGraphExecDestroy(exec);
    (void)cudaGraphDestroy(graph);
    (void)cudaEventDestroy(e0);
    (void)cudaEventDestroy(e1);
    const double ms = median(t), bytes = 2.0 * d.matmul_params();
    const double floor_ms = bytes / (c.copy_gbs * 1e6);
    const char* whats[] = {"GEMVs", "fused GEMVs", "fused GEMVs, unit norms"};
    const char* what = whats[variant];
    std::printf("%s chain of one b1 decode step (%d x 4 projections + LM head, graph) [%s]: "
                "%.3f ms, %.0f GB/s, %.3f of copy\n",
                what, d.n_layers, tu.name, ms, bytes / (ms * 1e6), floor_ms / ms);
    g_table.push_back({std::string("chain ") + what + " [" + tu.name + "] ms", fmt("%.3f", ms),
                       fmt("%.3f of copy (%.3f ms)", floor_ms / ms, floor_ms)});
  }
  set_gemv_tuning(saved);
  (void)cudaStreamDestroy(s);
  return Status::Ok();
}

Status bench_decode_one(const LlamaDims& d, const Ceilings& c, const std::string& tag, int ctx,
                        int batch, int steps);

// Roofline ms of one batch-1 step at ctx (the bytes bench_decode_one counts).
double floor_of(const LlamaCuda& g, int ctx, int steps, const Ceilings& c) {
  const LlamaDims& d = g.dims();
  const double weight_bytes = decode_step_bytes(d, 1, ctx, steps).weights;
  const double kv = d.kv_bytes_per_token() * (ctx + (steps + 1) / 2.0 + 1);
  return (weight_bytes + kv + 2.0 * d.vocab * 4) / (c.copy_gbs * 1e6);
}

// Batch-1 A/B of the GEMV launch choices x folded-norm (unit) input x fusion, same runner.
Status bench_b1_tunings(LlamaCuda& g, const std::string& tag, int ctx, int steps,
                        double floor_ms) {
  const GemvTuning saved = gemv_tuning();
  const LlamaCudaOptions def = g.options();
  for (int fused = 1; fused >= 0; --fused)
    for (const NamedTuning& tu : kTunings)
      for (int unit = 1; unit >= 0; --unit) {
        if (!fused && !unit) continue;  // unfused: the norms are separate kernels either way
        // norm loads vs unit norms: measured once, with the first tuning
        if (!unit && &tu != &kTunings[0]) continue;
        set_gemv_tuning(tu.t);
        g.set_fusion(fused, false);
        g.set_unit_norms(unit);  // also re-captures the graph with the tuning
        FRUGAL_ASSIGN_OR_RETURN(const double ms, time_decode(g, 1, ctx, steps));
        const std::string what = tag + (tag.empty() ? "" : " ") + "b1 ctx " +
                                 std::to_string(ctx) + (fused ? " fused" : " unfused") +
                                 (fused ? (unit ? " unit-norm" : " norm-loads") : "") + " [" +
                                 tu.name + "]";
        std::printf("%s: %.3f ms/step, %.3f of roofline\n", what.c_str(), ms, floor_ms / ms);
        g_table.push_back({what + " ms", fmt("%.3f", ms), fmt("%.3f of roofline", floor_ms / ms)});
      }
  set_gemv_tuning(saved);
  g.set_fusion(def.fuse_gemv, def.fuse_attention_merge);
  g.set_unit_norms(true);
  return Status::Ok();
}

Status bench_decode(const LlamaDims& d, const Ceilings& c, bool quick, bool b1_only = false) {
  FRUGAL_RETURN_IF_ERROR(bench_gemv_chain(d, c));
  if (b1_only) {
    for (int ctx : {1024, 4096}) FRUGAL_RETURN_IF_ERROR(bench_decode_one(d, c, "", ctx, 1, 8));
    return Status::Ok();
  }
  const int steps = quick ? 8 : 32;
  const std::vector<int> batches = quick ? std::vector<int>{1, 8} : std::vector<int>{1, 8, 32, 64, 128};
  for (int ctx : {1024, 4096})
    for (int batch : batches)
      FRUGAL_RETURN_IF_ERROR(bench_decode_one(d, c, "", ctx, batch, steps));
  return Status::Ok();
}

Status bench_decode_one(const LlamaDims& d, const Ceilings& c, const std::string& tag, int ctx,
                        int batch, int steps) {
  const double weight_bytes = decode_step_bytes(d, batch, ctx, steps).weights;
  {
    {
      LlamaCudaOptions o;
      o.max_batch = batch;
      o.max_prefill_tokens = 1;
      o.max_seq_len = ctx + steps + 8;
      o.block_size = 16;
      o.shuffle_blocks = true;
      auto made = LlamaCuda::create(d, o);
      if (!made.ok()) {
        std::printf("decode ctx %d batch %d: skipped: %s\n", ctx, batch,
                    made.status().to_string().c_str());
        g_table.push_back({tag + "decode ctx " + std::to_string(ctx) + " b" + std::to_string(batch),
                           "does not fit", "-"});
        return Status::Ok();
      }
      LlamaCuda& g = **made;
      FRUGAL_RETURN_IF_ERROR(g.randomize_weights(7));
      FRUGAL_RETURN_IF_ERROR(g.randomize_kv(9));
      FRUGAL_ASSIGN_OR_RETURN(const double ms, time_decode(g, batch, ctx, steps));
      double ms_eager = 0, ms_nopdl = 0, ms_unfused = 0, ms_gemv_only = 0, ms_merge = 0;
      if (batch == 1) {
        g.set_use_graphs(false);
        FRUGAL_ASSIGN_OR_RETURN(ms_eager, time_decode(g, batch, ctx, steps));
        g.set_use_graphs(true);
        g.set_programmatic_launch(false);
        FRUGAL_ASSIGN_OR_RETURN(ms_nopdl, time_decode(g, batch, ctx, steps));
        g.set_programmatic_launch(true);
        // A/B of the fusions: RMSNorm / RoPE + K/V write / SwiGLU / residual add inside the
        // GEMVs (on by default), the split-K merge inside the attention kernel (off by default)
        const LlamaCudaOptions def = g.options();
        g.set_fusion(false, false);
        FRUGAL_ASSIGN_OR_RETURN(ms_unfused, time_decode(g, batch, ctx, steps));
        g.set_fusion(true, false);
        FRUGAL_ASSIGN_OR_RETURN(ms_gemv_only, time_decode(g, batch, ctx, steps));
        g.set_fusion(true, true);
        FRUGAL_ASSIGN_OR_RETURN(ms_merge, time_decode(g, batch, ctx, steps));
        g.set_fusion(def.fuse_gemv, def.fuse_attention_merge);
        if (g_gemv_ab)
          FRUGAL_RETURN_IF_ERROR(bench_b1_tunings(g, tag, ctx, steps, floor_of(g, ctx, steps, c)));
      }
      // bytes of one step: weights, K/V read at the mean position, K/V written, logits w+r
      const DecodeBytes db = decode_step_bytes(d, batch, ctx, steps);
      const double kv = db.kv, bytes = db.total();
      const double floor_ms = bytes / (c.copy_gbs * 1e6);
      const double per_seq = 1000.0 / ms, agg = per_seq * batch;
      std::printf("%s%sdecode ctx %5d batch %3d: %8.3f ms/step  %8.1f tok/s/seq  %9.1f tok/s total  "
                  "bytes %.2f GB (weights %.2f, KV %.2f)  roofline %.3f ms  ratio %.3f  "
                  "[arena %.1f GiB]%s\n",
                  tag.c_str(), tag.empty() ? "" : " ", ctx, batch, ms, per_seq, agg, bytes / 1e9, weight_bytes / 1e9, kv / 1e9,
                  floor_ms, floor_ms / ms, g.memory().total / 1073741824.0,
                  batch == 1 ? fmt("  eager (no graph) %.3f ms/step, graph without PDL %.3f ms/step, "
                                   "graph+PDL speedup %.3fx",
                                   ms_eager, ms_nopdl, ms_eager / ms).c_str()
                             : "");
      g_table.push_back({tag + (tag.empty() ? "" : " ") + "decode ctx " + std::to_string(ctx) +
                             " b" + std::to_string(batch) + " tok/s per seq | total",
                         fmt("%.1f | %.0f", per_seq, agg),
                         fmt("%.3f of roofline (%.3f ms vs %.3f)", floor_ms / ms, ms, floor_ms)});
      if (batch == 1)
        g_table.push_back({tag + (tag.empty() ? "" : " ") + "decode ctx " + std::to_string(ctx) +
                               " b1 ms: eager | graph | graph+PDL",
                           fmt("%.3f | %.3f | %.3f", ms_eager, ms_nopdl, ms),
                           fmt("graph+PDL %.3fx eager", ms_eager / ms)});
      if (batch == 1)
        g_table.push_back({tag + (tag.empty() ? "" : " ") + "decode ctx " + std::to_string(ctx) +
                               " b1 ms: unfused | +GEMV | +merge",
                           fmt("%.3f | %.3f | %.3f", ms_unfused, ms_gemv_only, ms_merge),
                           fmt("GEMV fusion %.3fx; unfused %.3f of roofline",
                               ms_unfused / ms_gemv_only, floor_ms / ms_unfused)});
    }
  }
  return Status::Ok();
}

Status bench_prefill(const LlamaDims& d, const Ceilings& c, bool quick) {
  const std::vector<int> lens =
      quick ? std::vector<int>{512, 2048} : std::vector<int>{512, 1024, 2048, 4096, 8192};
  LlamaCudaOptions o;
  o.max_batch = 1;
  o.max_prefill_tokens = lens.back();
  o.max_seq_len = lens.back();
  o.block_size = 16;
  o.shuffle_blocks = true;
  FRUGAL_ASSIGN_OR_RETURN(auto g, LlamaCuda::create(d, o));
  FRUGAL_RETURN_IF_ERROR(g->randomize_weights(7));
  std::mt19937 rng(3);
  std::vector<int32_t> tokens((size_t)lens.back());
  for (auto& t : tokens) t = (int32_t)(rng() % d.vocab);
  std::vector<std::pair<std::string, int>> kernels = g_prefill_ab;
  if (kernels.empty()) kernels.push_back({"", prefill_attention_kernel()});
  const int saved = prefill_attention_kernel();
  for (int T : lens)
  for (const auto& [name, kernel] : kernels) {
    set_prefill_attention_kernel(kernel);
    auto timed = time_prefill(*g, tokens.data(), T);
    set_prefill_attention_kernel(saved);
    FRUGAL_ASSIGN_OR_RETURN(const double ms, std::move(timed));
    const PrefillFlops pf = prefill_flops(d, T);
    const double attn = pf.attention, flops = pf.total;
    const double tflops = flops / (ms * 1e9);
    const std::string tag = name.empty() ? "" : " (attention " + name + ")";
    std::printf("prefill %5d tokens%s: %9.2f ms  %9.0f tok/s  %.1f TFLOP/s (attention %.0f%% of "
                "flops)  %.3f of cuBLAS GEMM rate\n",
                T, tag.c_str(), ms, T / ms * 1000, tflops, 100 * attn / flops,
                tflops / c.gemm_tflops);
    g_table.push_back({"prefill " + std::to_string(T) + tag + " tok/s | TFLOP/s",
                       fmt("%.0f | %.1f", T / ms * 1000, tflops),
                       fmt("%.3f of cuBLAS GEMM", tflops / c.gemm_tflops)});
  }
  return Status::Ok();
}

// Causal prefill attention alone (the runner's path: paged decode kernel over one shared block
// table, token t attending to [0, t]), Llama-3.1-8B heads, bf16 KV; same flop count as
// bench/cuda/torch_compare.py's SDPA rows. KV block size 16 (the runner's) with a shuffled
// table: every kernel; then the FA3 kernels at block sizes 16 / 32 / 64 with a contiguous
// table (runs of consecutive blocks: the grouped kernels' one-box tiles) and 32 / 64 / 128
// shuffled (the block size as a memory / speed knob: TMA boxes of 16 .. 128 rows).
Status bench_prefill_attention(bool quick) {
  const int H = 32, KV = 8, D = 128;
  const std::vector<int> lens =
      quick ? std::vector<int>{512, 2048} : std::vector<int>{512, 1024, 2048, 4096, 8192};
  struct Layout {
    int bs;
    bool contiguous;
  };
  const Layout layouts[] = {{16, false}, {16, true}, {32, false}, {32, true},
                            {64, false}, {64, true}, {128, false}};
  for (int T : lens)
  for (const Layout& lay : layouts) {
    const int BS = lay.bs;
    const int n_blocks = T / BS;
    const size_t cache = (size_t)n_blocks * BS * KV * D;
    FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer k, DeviceBuffer::allocate(cache * 2));
    FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer v, DeviceBuffer::allocate(cache * 2));
    FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::allocate((size_t)T * H * D * 4));
    FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer out, DeviceBuffer::allocate((size_t)T * H * D * 4));
    FRUGAL_RETURN_IF_ERROR(fill_random_bf16(k.as<uint16_t>(), cache, 11, 2.0f));
    FRUGAL_RETURN_IF_ERROR(fill_random_bf16(v.as<uint16_t>(), cache, 12, 1.0f));
    std::vector<int32_t> table((size_t)n_blocks), seq_lens((size_t)T);
    std::iota(table.begin(), table.end(), 0);
    if (!lay.contiguous) std::shuffle(table.begin(), table.end(), std::mt19937(1));
    std::iota(seq_lens.begin(), seq_lens.end(), 1);
    FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer dt, DeviceBuffer::allocate(table.size() * 4));
    FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer dl, DeviceBuffer::allocate(seq_lens.size() * 4));
    FRUGAL_RETURN_IF_ERROR(dt.upload(table.data(), table.size() * 4));
    FRUGAL_RETURN_IF_ERROR(dl.upload(seq_lens.data(), seq_lens.size() * 4));
    FRUGAL_RETURN_IF_ERROR(fill_f32(q.as<float>(), (size_t)T * H * D, 0.01f));
    PagedDecodeParams p;
    p.q = q.as<float>();
    p.out = out.as<float>();
    p.k_cache = k.as<uint16_t>();
    p.v_cache = v.as<uint16_t>();
    p.block_tables = dt.as<int32_t>();
    p.shared_block_table = true;
    p.seq_lens = dl.as<int32_t>();
    p.max_blocks_per_seq = n_blocks;
    p.n_blocks = n_blocks;
    p.n_seqs = T;
    p.n_heads = H;
    p.n_kv_heads = KV;
    p.head_dim = D;
    p.block_size = BS;
    p.max_seq_len = T;
    FRUGAL_ASSIGN_OR_RETURN(PagedDecodePlan plan, plan_paged_decode(p));
    FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer ws, DeviceBuffer::allocate(plan.workspace_bytes));
    p.workspace = ws.data();
    p.workspace_bytes = ws.size();
    cudaEvent_t e0, e1;
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e0));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e1));
    PagedPrefillParams f;
    f.q = p.q;
    f.out = p.out;
    f.k_cache = p.k_cache;
    f.v_cache = p.v_cache;
    f.block_table = p.block_tables;
    f.n_blocks = n_blocks;
    f.n_tokens = T;
    f.pos0 = 0;
    f.n_heads = H;
    f.n_kv_heads = KV;
    f.head_dim = D;
    f.block_size = BS;
    // variant 0: the split-K decode kernel; 1: the FA2 kernel with its automatic tile choice;
    // 2..4: forced configs 1..3 (64 rows = 4 warps x 16; 128 = 8 x 16; 128 = 4 x 32);
    // 5, 6, 7: the wgmma kernel: K/V one tile ahead, + softmax-PV overlap, two tiles ahead;
    // 8, 9, 10: FlashAttention-3's structure (TMA + producer warpgroup; + softmax-PV overlap;
    // + ping-pong of the consumer warpgroups; 11: the same with a 3-stage K/V ring);
    // 12, 13: 10 and 11 with the grouped K/V boxes (one per block, one per run of blocks);
    // 14: 12 with runs off (contiguous tables); 15: 12 with boxes of 16 rows (blocks >= 32)
    const bool every = BS == 16 && !lay.contiguous;
    for (int variant = 0; variant < 16; ++variant) {
      if (!every && variant < 10) continue;
      if (!every && (variant == 11 || variant == 13)) continue;  // 3-stage: v7c, block 16
      if (variant == 14 && !lay.contiguous) continue;
      if (variant == 15 && BS < 32) continue;
      FRUGAL_RETURN_IF_ERROR(set_prefill_tma_boxes(variant == 15 ? 16 : 128, variant != 14));
      const bool flash = variant > 0;
      f.config = variant >= 2 && variant <= 4 ? variant - 1 : 0;
      f.kernel = variant == 5    ? kPrefillWgmma
                 : variant == 6  ? kPrefillWgmmaOverlap
                 : variant == 7  ? kPrefillWgmmaDeep
                 : variant == 8  ? kPrefillWgmmaTma
                 : variant == 9  ? kPrefillWgmmaTmaOverlap
                 : variant == 10 ? kPrefillWgmmaFa3
                 : variant == 11 ? kPrefillWgmmaFa3Deep
                 : variant == 12 ? kPrefillWgmmaFa3Grouped
                 : variant == 13 ? kPrefillWgmmaFa3GroupedDeep
                 : variant >= 14 ? kPrefillWgmmaFa3Grouped
                                 : kPrefillFa2;
      FRUGAL_RETURN_IF_ERROR(flash ? paged_attention_prefill(f) : paged_attention_decode(p));
      std::vector<double> t;
      for (int rep = 0; rep < 5; ++rep) {
        FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(e0));
        FRUGAL_RETURN_IF_ERROR(flash ? paged_attention_prefill(f) : paged_attention_decode(p));
        FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(e1));
        FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(e1));
        float ms = 0;
        FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, e0, e1));
        t.push_back(ms);
      }
      const double ms = median(t);
      const double flops = 4.0 * H * D * ((double)T * (T + 1) / 2);
      const char* kinds[] = {"split-K decode kernel", "FA2 mma.sync", "FA2 config 1, 4 x 16 rows",
                             "FA2 config 2, 8 x 16 rows", "FA2 config 3, 4 x 32 rows",
                             "wgmma", "wgmma + softmax/PV overlap", "wgmma, 3-stage K/V",
                             "TMA + warp-specialised", "TMA + ws + overlap",
                             "FA3: TMA + ws + overlap + ping-pong", "FA3, 3-stage K/V",
                             "FA3 grouped boxes", "FA3 grouped boxes, 3-stage K/V",
                             "FA3 grouped boxes, runs off", "FA3 grouped boxes of 16 rows"};
      const std::string where = "block " + std::to_string(BS) +
                                (lay.contiguous ? " contiguous" : " shuffled");
      std::printf("prefill attention alone T %5d (%s), %s: %.3f ms  %.1f TFLOP/s\n", T,
                  kinds[variant], where.c_str(), ms, flops / (ms * 1e9));
      // the summary table: every kernel at block 16 shuffled, the grouped kernel elsewhere
      if ((every && (variant <= 1 || variant >= 5)) || (!every && variant == 12))
        g_table.push_back({std::string("prefill attn alone T ") + std::to_string(T) + " " +
                               (variant == 0 ? "split-K" : kinds[variant]) + ", " + where +
                               " TFLOP/s",
                           fmt("%.1f", flops / (ms * 1e9)), "vs torch SDPA: torch_compare.py"});
    }
    FRUGAL_RETURN_IF_ERROR(set_prefill_tma_boxes(128, true));
    (void)cudaEventDestroy(e0);
    (void)cudaEventDestroy(e1);
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  std::string arch = "llama-3.1-8b", only;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--no-gemv-ab") {
      g_gemv_ab = false;
    } else if (a == "--prefill-ab") {  // whole prefill: FA3 vs FA3 with grouped boxes
      g_prefill_ab = {{"fa3", kPrefillWgmmaFa3}, {"fa3g", kPrefillWgmmaFa3Grouped}};
    } else if (i + 1 < argc && a == "--arch") {
      arch = argv[++i];
    } else if (i + 1 < argc && a == "--only") {
      only = argv[++i];
    } else if (i + 1 < argc && a == "--decode-attn" &&
               (std::string(argv[i + 1]) == "split" || std::string(argv[i + 1]) == "mma")) {
      // the paged decode attention kernel every step uses (A/B; default mma)
      set_decode_attention_kernel(std::string(argv[++i]) == "mma" ? kDecodeMma : kDecodeSplit);
    } else if (i + 1 < argc && a == "--prefill-attn" &&
               (std::string(argv[i + 1]) == "fa2" || std::string(argv[i + 1]) == "wgmma" ||
                std::string(argv[i + 1]) == "overlap" || std::string(argv[i + 1]) == "deep" ||
                std::string(argv[i + 1]) == "tma" || std::string(argv[i + 1]) == "fa3" ||
                std::string(argv[i + 1]) == "fa3g")) {
      // the prefill attention kernel of the whole-model prefill (A/B; default: the auto rule)
      const std::string k = argv[++i];
      set_prefill_attention_kernel(k == "fa2"     ? kPrefillFa2
                                   : k == "wgmma" ? kPrefillWgmma
                                   : k == "deep"  ? kPrefillWgmmaDeep
                                   : k == "tma"   ? kPrefillWgmmaTma
                                   : k == "fa3"   ? kPrefillWgmmaFa3
                                   : k == "fa3g"  ? kPrefillWgmmaFa3Grouped
                                                  : kPrefillWgmmaOverlap);
    } else {
      std::fprintf(stderr,
                   "usage: frugal_cuda_model_bench [--arch NAME] [--quick] [--only decode|decode-b1|prefill|attention|ncu]"
                   " [--no-gemv-ab] [--decode-attn split|mma] [--prefill-attn fa2|wgmma|deep|overlap|tma|fa3|fa3g]"
                   " [--prefill-ab]\n");
      return 2;
    }
  }
  if (device_count() == 0) {
    std::fprintf(stderr, "frugal_cuda_model_bench: no CUDA device\n");
    return 2;
  }
  auto dims = dummy_dims(arch);
  if (!dims.ok()) {
    std::fprintf(stderr, "error: %s\n", dims.status().to_string().c_str());
    return 2;
  }
  const LlamaDims& d = *dims;
  auto info = device_info(0);
  if (info.ok())
    std::printf("device: %s, %d SMs, %.1f GiB\n", info->name, info->num_sms,
                info->total_bytes / 1073741824.0);
  std::printf("model: %s dummy weights, bf16, %d layers, dim %lld, ffn %lld, %d/%d heads x %d, "
              "vocab %lld; %.2f GB of weights read per decode step\n",
              arch.c_str(), d.n_layers, (long long)d.dim, (long long)d.hidden, d.n_heads,
              d.n_kv_heads, d.head_dim, (long long)d.vocab, 2.0 * d.matmul_params() / 1e9);
  cudaStream_t s;
  if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) return 1;
  if (only == "ncu") {  // kernels for ncu: nothing timed, no ceilings
    const Status st = bench_gemv_chain(d, Ceilings{}, true);
    if (!st.ok()) std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
    return st.ok() ? 0 : 1;
  }
  auto c = ceilings_row(s);
  if (!c.ok()) {
    std::fprintf(stderr, "error: %s\n", c.status().to_string().c_str());
    return 1;
  }
  Status st = Status::Ok();
  if (only.empty() || only == "decode") st = bench_decode(d, *c, quick);
  if (only == "decode-b1") st = bench_decode(d, *c, quick, true);
  if (st.ok() && (only.empty() || only == "prefill")) st = bench_prefill(d, *c, quick);
  if (st.ok() && (only.empty() || only == "attention")) st = bench_prefill_attention(quick);
  // Llama-3.1-70B in BF16 (131 GiB of weights) fits one H200 with a small KV cache: batch 1
  // decode at context 1k. Then the bad-input path: with a 64 x 32k KV cache it does not fit.
  auto d70 = dummy_dims("llama-3.1-70b");
  if (st.ok() && d70.ok() && (((only.empty() || only == "decode") && !quick) || only == "decode-b1"))
    st = bench_decode_one(*d70, *c, "llama-3.1-70b", 1024, 1, only == "decode-b1" ? 8 : 16);
  if (d70.ok()) {
    LlamaCudaOptions o;
    o.max_batch = 64;
    o.max_seq_len = 32768;
    auto r = LlamaCuda::create(*d70, o);
    std::printf("llama-3.1-70b bf16, 64 x 32k KV: %s\n",
                r.ok() ? "fits" : r.status().to_string().c_str());
  }
  std::printf("\n%-44s | %-22s | %s\n", "measurement", "value", "ratio");
  for (const Row& r : g_table)
    std::printf("%-44s | %-22s | %s\n", r.what.c_str(), r.value.c_str(), r.ratio.c_str());
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
    return 1;
  }
  return 0;
}
