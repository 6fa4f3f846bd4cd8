#include "planner/plan_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <thread>

#include "planner/host_probe.h"
#include "planner/presets.h"
#include "planner/units.h"

namespace frugal::planner {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

Result<ModelInput> resolve_model_args(const PlanArgs& a) {
  if (!a.dims.empty() && !a.model.empty())
    return InvalidArgument("give either --model or --dims, not both");
  if (!a.dims.empty()) {
    ModelInput in;
    FRUGAL_ASSIGN_OR_RETURN(in.spec, spec_from_dims(a.dims));
    in.source = "dims";
    return in;
  }
  if (a.model.empty())
    return InvalidArgument("--model (-m) is required: a preset name (--list-presets), a config.json "
                           "or model directory, a .gguf file; or --dims");
  return resolve_model(a.model);
}

// The device and the host that runs offloaded layers.
Status resolve_hardware(const PlanArgs& a, PlanContext& ctx, std::vector<std::string>& notes) {
  std::optional<HostProbeResult> probe;
  if (a.measure_host) {
    FRUGAL_ASSIGN_OR_RETURN(HostProbeResult p, probe_host(HostProbeParams{}));
    notes.push_back(fmt::format("measured host: read {:.1f} GB/s, copy {:.1f} GB/s, fp32 FMA peak {:.2f} "
                                "TFLOP/s with {} threads over {} MiB; memory {:.1f} GB",
                                p.read_gbs, p.copy_gbs, p.fma_tflops, p.threads, p.buffer_bytes >> 20,
                                p.memory_gb));
    probe = p;
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  // Without a measurement: cores x 32 fp32 FLOP/cycle (two 8-wide FMA pipes) x 3 GHz.
  const double assumed_cpu_tflops = cores * 32 * 3.0e9 / 1e12;

  Hardware dev;
  if (!a.hw_file.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(dev, hardware_from_json_file(a.hw_file));
  } else if (a.gpu.empty()) {
    return InvalidArgument("--gpu is required: a name from --list-hardware, 'cpu' with --bandwidth "
                           "or --measure-host, or --hw-file FILE.json");
  } else if (lower(a.gpu) == "cpu") {
    double bw = a.bandwidth_gbs > 0 ? a.bandwidth_gbs : (probe ? probe->read_gbs : -1);
    if (bw <= 0) return InvalidArgument("--gpu cpu needs --bandwidth GB/s or --measure-host");
    double mem = a.memory_gb > 0 ? a.memory_gb : (probe ? probe->memory_gb : host_memory_bytes() / 1e9);
    if (mem <= 0) return InvalidArgument("--gpu cpu: host memory unknown; pass --memory GB");
    double tf = a.tflops > 0 ? a.tflops : (probe ? probe->fma_tflops : assumed_cpu_tflops);
    if (a.tflops <= 0 && !probe)
      notes.push_back(fmt::format("cpu compute peak assumed: {} cores x 32 FLOP/cycle x 3 GHz = {:.2f} "
                                  "TFLOP/s (--tflops or --measure-host to replace)", cores, tf));
    dev = cpu_hardware(mem, bw, tf, probe && a.bandwidth_gbs <= 0 ? "measured" : "given");
  } else {
    FRUGAL_ASSIGN_OR_RETURN(dev, find_hardware(a.gpu));
  }
  if (!dev.is_cpu) {
    std::string over;
    if (a.memory_gb > 0) { dev.memory_gb = a.memory_gb; over += " memory"; }
    if (a.bandwidth_gbs > 0) { dev.bandwidth_gbs = a.bandwidth_gbs; over += " bandwidth"; }
    if (a.tflops > 0) { dev.bf16_tflops = a.tflops; over += " bf16 peak"; }
    if (!over.empty()) dev.source += "; overridden:" + over;
  }
  FRUGAL_RETURN_IF_ERROR(validate_hardware(dev));
  ctx.device = dev;

  // Host for offloaded layers: measured, else an assumed server (stated in the notes when used).
  if (probe) {
    ctx.host = cpu_hardware(probe->memory_gb, probe->read_gbs, probe->fma_tflops, "measured");
  } else {
    ctx.host = cpu_hardware(256, 100, 2, "assumed server host: 256 GB, 100 GB/s, 2 TFLOP/s fp32");
  }
  if (a.host_memory_gb > 0) ctx.host.memory_gb = a.host_memory_gb;
  if (a.host_bandwidth_gbs > 0) ctx.host.bandwidth_gbs = a.host_bandwidth_gbs;
  if (a.host_tflops > 0) ctx.host.bf16_tflops = ctx.host.fp32_tflops = a.host_tflops;
  if (a.host_memory_gb > 0 || a.host_bandwidth_gbs > 0 || a.host_tflops > 0) ctx.host.source = "given";
  return validate_hardware(ctx.host);
}

Status build_space(const PlanArgs& a, const PlanContext& ctx, SearchSpace& space) {
  space = default_search_space(ctx);
  if (!a.weights.empty()) {
    if (lower(a.weights) == "file") {
      if (!ctx.file) return InvalidArgument("--weights file needs a .gguf model");
      space.weights.clear();
      space.include_file_weights = true;
    } else {
      std::optional<WeightFormat> f = weight_format_from_name(a.weights);
      if (!f) return InvalidArgument("unknown weight format '" + a.weights + "'; known: " +
                                     weight_format_names() + ", file");
      space.weights = {*f};
      space.include_file_weights = false;
    }
  }
  if (!a.kv_dtype.empty()) {
    std::optional<KvFormat> f = kv_format_from_name(a.kv_dtype);
    if (!f) return InvalidArgument("unknown KV format '" + a.kv_dtype + "'; known: " + kv_format_names());
    space.kv = {*f};
  }
  if (!a.embed_dtype.empty()) {
    std::optional<WeightFormat> f = weight_format_from_name(a.embed_dtype);
    if (!f) return InvalidArgument("unknown embedding format '" + a.embed_dtype + "'; known: " +
                                   weight_format_names());
    space.embeddings = *f;
  }
  if (a.tp < 0) return InvalidArgument("--tp must be positive");
  if (a.tp > 0) {
    if (a.tp > ctx.max_devices)
      return InvalidArgument(fmt::format("--tp {} exceeds the {} device(s) available (--gpus)", a.tp,
                                         ctx.max_devices));
    FRUGAL_RETURN_IF_ERROR(kv_heads_per_device(ctx.model, a.tp).status());  // tp rules, as an error
    space.tps = {a.tp};
  }
  if (a.offload >= 0) {
    if (ctx.device.is_cpu && a.offload > 0)
      return InvalidArgument("--offload needs an accelerator; the device is the host CPU");
    space.fixed_offload = a.offload;
  }
  if (!a.min_quality.empty()) {
    const char t = (char)std::toupper((unsigned char)a.min_quality[0]);
    if (a.min_quality.size() != 1 || t < 'A' || t > 'D')
      return InvalidArgument("--min-quality must be one of A, B, C, D");
    space.min_tier = t;
  }
  return Status::Ok();
}

}  // namespace

Result<PlanReport> make_plan(const PlanArgs& a) {
  PlanReport r;
  FRUGAL_ASSIGN_OR_RETURN(r.model, resolve_model_args(a));
  PlanContext& ctx = r.ctx;
  ctx.model = r.model.spec;
  ctx.file = r.model.file;
  const ModelSpec& m = ctx.model;
  FRUGAL_RETURN_IF_ERROR(resolve_hardware(a, ctx, r.notes));

  Workload& w = ctx.workload;
  w.batch = a.batch;
  w.context = a.context > 0 ? a.context : (m.max_context > 0 ? std::min<int64_t>(4096, m.max_context) : 4096);
  w.prompt = a.prompt;
  w.prefill_chunk = a.prefill_chunk;
  w.kv_block = a.kv_block;
  w.flash_attention = !a.no_flash_attention;
  FRUGAL_RETURN_IF_ERROR(validate_workload(w));
  if (!(a.mem_util > 0 && a.mem_util <= 1)) return InvalidArgument("--mem-util must be in (0, 1]");
  for (double e : {a.eff_bandwidth, a.eff_flops, a.eff_link})
    if (e > 1 || e == 0) return InvalidArgument("efficiencies must be in (0, 1]");
  ctx.assume.overhead_gib = a.overhead_gib;
  ctx.assume.mem_util = a.mem_util;
  ctx.assume.eff_bandwidth = a.eff_bandwidth;
  ctx.assume.eff_flops = a.eff_flops;
  ctx.assume.eff_link = a.eff_link;
  if (a.gpus < 0) return InvalidArgument("--gpus must be positive");
  ctx.max_devices = a.gpus > 0 ? a.gpus : (ctx.device.is_cpu ? 1 : 8);
  if (ctx.device.is_cpu && ctx.max_devices > 1) return InvalidArgument("--gpus > 1 needs an accelerator");

  if (m.max_context > 0 && w.context > m.max_context)
    r.notes.push_back(fmt::format("context {} exceeds the model's trained context {}", w.context, m.max_context));
  if (m.sliding_window > 0)
    r.notes.push_back(fmt::format("sliding window {} ignored: the KV cache is sized for the full context",
                                  m.sliding_window));
  if (m.is_moe())
    r.notes.push_back("MoE: all experts resident; decode reads only the experts the batch routes to "
                      "(uniform routing assumed)");

  SearchSpace space;
  FRUGAL_RETURN_IF_ERROR(build_space(a, ctx, space));
  FRUGAL_ASSIGN_OR_RETURN(r.options, search_options(ctx, space));
  r.n_fit = (size_t)std::count_if(r.options.begin(), r.options.end(), [](const PlanOption& o) { return o.fits; });
  r.params = count_params(m);

  // The option the detail answers refer to: the best, else the first one that was evaluated.
  const PlanOption* ref = r.best();
  if (!ref)
    for (const PlanOption& o : r.options)
      if (o.mem.budget > 0) { ref = &o; break; }
  if (ref) {
    if (ref->dep.offload_layers > 0)
      r.notes.push_back("offloaded layers run on the host (" + ctx.host.source + ")");
    if (a.explain) {
      FRUGAL_RETURN_IF_ERROR(evaluate_option(ctx, ref->dep, &r.explain).status());
    }
    if (a.max_batch) {
      FRUGAL_ASSIGN_OR_RETURN(r.max_batch, max_batch(ctx, ref->dep));
    }
    if (a.max_context) {
      FRUGAL_ASSIGN_OR_RETURN(r.max_context, max_context(ctx, ref->dep));
    }
    if (!r.best() && (a.max_batch || a.max_context))
      r.notes.push_back("nothing fits the workload; capacity answers are for " + ref->dep.label());
  }
  return r;
}

Result<std::string> run_plan(const PlanArgs& a) {
  if (a.list_presets) return render_preset_list();
  if (a.list_hardware) return render_hardware_list();
  FRUGAL_ASSIGN_OR_RETURN(PlanReport r, make_plan(a));
  std::string out;
  if (!a.svg.empty()) {
    const std::string svg = render_svg(r);
    const std::string tmp = a.svg + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      if (!f) return IoError("cannot write '" + tmp + "'");
      f << svg;
      if (!f.good()) return IoError("write to '" + tmp + "' failed");
    }
    if (std::rename(tmp.c_str(), a.svg.c_str()) != 0) return IoError("cannot rename '" + tmp + "' to '" + a.svg + "'");
    if (!a.json) r.notes.push_back("charts written to " + a.svg);
  }
  if (a.json) return render_json(r);
  TextOptions t;
  t.top = a.top;
  t.all = a.all;
  t.explain = a.explain;
  return render_text(r, t);
}

}  // namespace frugal::planner
