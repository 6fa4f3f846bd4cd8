#include "planner/time_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "planner/units.h"

namespace frugal::planner {

namespace {

void note(ExplainLog* log, std::string topic, std::string formula, std::string substituted,
          std::string result) {
  if (log) log->push_back({std::move(topic), std::move(formula), std::move(substituted), std::move(result)});
}

// Roofline of one processor: the larger of memory time and compute (+ dequantisation) time.
void roofline(PhaseEstimate& p, double peak, double eff_f, double bw, double eff_bw,
              double dequant_ops, double vector_peak) {
  p.t_compute = p.flops / (peak * eff_f);
  p.t_memory = p.bytes / (bw * eff_bw);
  p.t_dequant = dequant_ops > 0 ? dequant_ops / (vector_peak * eff_f) : 0;
  p.intensity = p.bytes > 0 ? p.flops / p.bytes : 0;
  p.compute_bound = p.t_compute + p.t_dequant > p.t_memory;
}

double phase_seconds(const PhaseEstimate& p) {
  return std::max(p.t_memory, p.t_compute + p.t_dequant) + p.t_comm + p.t_host;
}

}  // namespace

double expected_experts_touched(int n, int k, int64_t tokens) {
  if (n <= 1) return 1;
  return n * (1.0 - std::pow(1.0 - (double)k / n, (double)tokens));
}

double allreduce_seconds(const Hardware& hw, double eff_link, int tp, double bytes) {
  if (tp <= 1) return 0;
  const double steps = 2.0 * (tp - 1);
  return steps / tp * bytes / (hw.link_gbs * 1e9 * eff_link) + steps * hw.link_latency_us * 1e-6;
}

Result<TimeEstimate> estimate_time(const PlanContext& ctx, const Deployment& dep,
                                   const MemoryEstimate& mem, ExplainLog* log) {
  const ModelSpec& m = ctx.model;
  const Workload& w = ctx.workload;
  const Hardware& dev = ctx.device;
  const Hardware& host = ctx.host;
  const int tp = dep.tp;
  if (tp > 1 && dev.link_gbs <= 0)
    return InvalidArgument("hardware '" + dev.name + "' has no interconnect bandwidth; tp > 1 impossible");
  if (tp > 1 && dep.offload_layers > 0)
    return Unsupported("offloading layers together with tp > 1 is not modelled");

  TimeEstimate t;
  const ParamCounts pc = count_params(m);
  const int L = m.n_layers, Ld = mem.device_layers, Lh = dep.offload_layers;
  const double V = (double)m.vocab_size, h = (double)m.hidden, a = ctx.assume.act_bytes;
  const double head_flops = 2.0 * V * h;  // LM head per token
  // 2 FLOPs (multiply + add) per active matmul weight per token, per layer; LM head separate.
  const double layer_matmul = 2.0 * (double)(pc.matmul_active - m.vocab_size * m.hidden) / L;
  const double attn_coef = 4.0 * m.n_heads * (double)m.hd();  // FLOPs per token per key per layer
  const ShardedWeights& s = mem.sharded;
  const double lm_bytes = (double)(m.tied_embeddings ? s.bytes[(int)TensorRole::kEmbedding]
                                                     : s.bytes[(int)TensorRole::kLmHead]);

  // Compute path: FP8 weights run on FP8 tensor cores only where the device has them.
  t.compute = dep.file_weights ? ComputePath::kBf16 : weight_format_info(dep.weights).compute;
  if (t.compute == ComputePath::kFp8 && dev.fp8_tflops <= 0) t.compute = ComputePath::kBf16;
  if (dev.is_cpu) t.compute = ComputePath::kBf16;  // the CPU entry's peak is its fp32 FMA rate
  const double peak = dev.peak_flops(t.compute), eff_f = ctx.eff_flops();
  const double bw = dev.bandwidth_gbs * 1e9, eff_bw = ctx.eff_bandwidth();
  const double vec_peak = dev.peak_flops(ComputePath::kF32);
  // Native FP8 matmuls need no dequantisation; weight-only formats pay it on the vector units.
  const int dq_ops = t.compute == ComputePath::kFp8 ? 0
                     : dep.file_weights           ? 2
                                                  : weight_format_info(dep.weights).dequant_ops;
  const double q_elems_dev = (double)s.quantized_elems * (double)Ld / L;
  const double host_bw = host.bandwidth_gbs * 1e9 * host.eff_bandwidth;
  const double host_peak = host.peak_flops(ComputePath::kBf16) * host.eff_flops;
  const double host_link = ctx.assume.host_link_gbs * 1e9;

  // ---------------- prefill ----------------
  const int64_t P = w.prompt_tokens(), B = w.batch;
  const double T = (double)B * P;
  const int64_t chunk = std::min<int64_t>(w.prefill_chunk, B * P);
  const double n_chunks = std::ceil(T / chunk);
  double keys_read = 0;  // per sequence: keys re-read by each chunk
  if (chunk >= P) {
    keys_read = (double)P;
  } else {
    for (int64_t end = chunk; end < P + chunk; end += chunk) keys_read += (double)std::min(end, P);
  }
  {
    PhaseEstimate& p = t.prefill;
    const double attn = attn_coef / 2 * (double)P * (P + 1) * B;  // causal, per layer
    p.flops = (layer_matmul * T + attn) * Ld / tp + head_flops * B / tp;
    const double weights_read = (double)s.layer_bytes * Ld + lm_bytes + (double)mem.w_other;
    p.bytes = n_chunks * weights_read + T * mem.kv_token_bytes + B * keys_read * mem.kv_token_bytes;
    const double dq = q_elems_dev * dq_ops * std::ceil((double)chunk / 128) * n_chunks;
    roofline(p, peak, eff_f, bw, eff_bw, dq, vec_peak);
    p.t_comm = n_chunks * 2 * Ld * allreduce_seconds(dev, ctx.eff_link(), tp, chunk * h * a);
    if (Lh > 0) {
      const double hflops = (layer_matmul * T + attn) * Lh;
      const double hbytes = n_chunks * (double)s.layer_bytes * Lh;
      // Run where faster: on the host CPU, or by streaming the weights over PCIe to the device
      // (what llama.cpp does for large batches) and computing there.
      const double on_host = std::max(hflops / host_peak, hbytes / host_bw);
      const double streamed = std::max(hbytes / host_link, hflops / (peak * eff_f));
      p.t_host = std::min(on_host, streamed) + 2 * T * h * a / host_link;
    }
    p.seconds = phase_seconds(p);
    note(log, "prefill FLOPs / device",
         "(2*matmul_params_per_layer*T + 2*heads*hd*P*(P+1)*B) * layers/tp + 2*vocab*h*B/tp",
         fmt::format("T = {} x {} tokens, {} layers on device, tp {}", B, P, Ld, tp),
         fmt_flops(p.flops));
    note(log, "prefill bytes / device", "chunks * (weights read) + T * KV/token + B * keys re-read * KV/token",
         fmt::format("{:g} * {} + {:g} * {} + {} * {:g} * {}", n_chunks, fmt_bytes(weights_read), T,
                     mem.kv_token_bytes, B, keys_read, mem.kv_token_bytes),
         fmt_bytes(p.bytes));
    note(log, "prefill time", "max(bytes/(BW*eff), FLOPs/(peak*eff) + dequant) + all-reduce + host",
         fmt::format("max({}, {} + {}) + {} + {}", fmt_seconds(p.t_memory), fmt_seconds(p.t_compute),
                     fmt_seconds(p.t_dequant), fmt_seconds(p.t_comm), fmt_seconds(p.t_host)),
         fmt::format("{} ({}-bound, {:.0f} FLOP/B)", fmt_seconds(p.seconds),
                     p.compute_bound ? "compute" : "memory", p.intensity));
  }

  // ---------------- decode (one step at the mean context) ----------------
  t.mean_context = (double)P + (double)w.output_tokens() / 2;
  const double S = t.mean_context;
  // MoE: only the experts the batch routes to are read.
  double layer_read = (double)s.layer_bytes;
  if (m.is_moe()) {
    const double touched = expected_experts_touched(m.n_experts, m.experts_per_token, B);
    layer_read = (double)s.layer_bytes - (double)s.expert_bytes * (m.n_experts - touched);
    note(log, "MoE experts read / layer", "E * (1 - (1 - k/E)^batch)",
         fmt::format("{} * (1 - (1 - {}/{})^{})", m.n_experts, m.experts_per_token, m.n_experts, B),
         fmt::format("{:.2f} experts", touched));
  }
  const double flops_tok = (layer_matmul + attn_coef * S) * Ld / tp + head_flops / tp;
  const double kv_tok = S * (double)mem.kv_token_bytes;
  const double weights_step = layer_read * Ld + lm_bytes + (double)mem.w_other;  // + final norm
  {
    PhaseEstimate& d = t.decode;
    d.flops = flops_tok * B;
    d.bytes = weights_step + B * kv_tok;
    const double dq = q_elems_dev * dq_ops * std::ceil((double)B / 128);
    roofline(d, peak, eff_f, bw, eff_bw, dq, vec_peak);
    // Two all-reduces per layer + the vocab-parallel logits gather.
    d.t_comm = 2 * Ld * allreduce_seconds(dev, ctx.eff_link(), tp, B * h * a) +
               (tp > 1 ? (tp - 1.0) / tp * B * V * 4 / (dev.link_gbs * 1e9 * ctx.eff_link()) : 0);
    if (Lh > 0) {
      const double hflops = (layer_matmul + attn_coef * S) * Lh * B;
      const double hbytes = layer_read * Lh + B * S * kv_bytes_per_token(m, dep.kv, s.kv_heads, Lh);
      const double on_host = std::max(hflops / host_peak, hbytes / host_bw);
      const double streamed = std::max(hbytes / host_link, hflops / (peak * eff_f));
      d.t_host = std::min(on_host, streamed) + 2 * B * h * a / host_link;
    }
    d.seconds = phase_seconds(d);
    note(log, "decode bytes / step / device", "weights read + batch * S * KV/token   (S = prompt + output/2)",
         fmt::format("{} + {} * {:g} * {}", fmt_bytes(weights_step), B, S, mem.kv_token_bytes),
         fmt_bytes(d.bytes));
    note(log, "decode FLOPs / step / device",
         "batch * ((2*matmul_params_per_layer + 4*heads*hd*S) * layers/tp + 2*vocab*h/tp)",
         fmt::format("{} * (({} + {:g} * {:g}) * {}/{} + {}/{})", B, fmt_flops(layer_matmul),
                     attn_coef, S, Ld, tp, fmt_flops(head_flops), tp),
         fmt_flops(d.flops));
    note(log, "decode step", "max(bytes/(BW*eff), FLOPs/(peak*eff) + dequant) + all-reduce + host",
         fmt::format("max({} / ({:g} GB/s * {:g}), {} / ({:g} TFLOP/s * {:g}) + {}) + {} + {}",
                     fmt_bytes(d.bytes), dev.bandwidth_gbs, eff_bw, fmt_flops(d.flops), peak / 1e12,
                     eff_f, fmt_seconds(d.t_dequant), fmt_seconds(d.t_comm), fmt_seconds(d.t_host)),
         fmt::format("{} ({}-bound, {:.1f} FLOP/B)", fmt_seconds(d.seconds),
                     d.compute_bound ? "compute" : "memory", d.intensity));
  }
  t.ttft_s = t.prefill.seconds;
  t.decode_tok_s_seq = 1.0 / t.decode.seconds;
  t.decode_tok_s = (double)B / t.decode.seconds;
  t.request_s = t.prefill.seconds + (double)w.output_tokens() * t.decode.seconds;
  t.overall_tok_s = (double)B * (double)w.output_tokens() / t.request_s;

  // Batch where decode turns compute-bound (device only; MoE counted with all experts read):
  // B * f / Pe = (W + B * k) / Be  =>  B = (W / Be) / (f / Pe - k / Be).
  const double Pe = peak * eff_f, Be = bw * eff_bw;
  t.machine_balance = Pe / Be;
  const double W = (double)s.layer_bytes * Ld + lm_bytes + (double)mem.w_other;
  const double denom = flops_tok / Pe - kv_tok / Be;
  t.compute_bound_batch = denom > 0 ? (W / Be) / denom : -1;
  note(log, "compute-bound decode batch",
       "B* = (W/BWe) / (f/Pe - kv/BWe); weights only: (Pe/BWe) * bits/16",
       fmt::format("W = {}, f = {} per token, kv = {} per sequence, Pe/BWe = {:.0f} FLOP/B",
                   fmt_bytes(W), fmt_flops(flops_tok), fmt_bytes(kv_tok), t.machine_balance),
       t.compute_bound_batch > 0 ? fmt::format("{:.0f}", std::ceil(t.compute_bound_batch))
                                 : "never (KV traffic grows as fast as compute)");
  return t;
}

}  // namespace frugal::planner
