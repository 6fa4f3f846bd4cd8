#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "planner/presets.h"
#include "planner/quality.h"
#include "planner/report.h"
#include "planner/units.h"

namespace frugal::planner {

namespace {

// Left-aligned columns, except those listed in `right` (numbers).
std::string table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                  const std::vector<bool>& right) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t c = 0; c < header.size(); ++c) {
      const std::string& v = c < r.size() ? r[c] : std::string();
      const bool rt = c < right.size() && right[c];
      s += rt ? fmt::format("{:>{}}", v, width[c]) : fmt::format("{:<{}}", v, width[c]);
      if (c + 1 < header.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = line(header);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string gb(uint64_t b) { return fmt::format("{:.2f}", (double)b / 1e9); }

std::string quality_cell(const PlanOption& o) {
  if (o.delta_ppl < 0) return fmt::format("{} (file)", o.tier);
  if (o.delta_ppl == 0) return fmt::format("{} (ref)", o.tier);
  return fmt::format("{} (+{:.2f} ppl)", o.tier, o.delta_ppl);
}

std::string weights_cell(const Deployment& d) {
  return d.file_weights ? "file" : weight_format_name(d.weights);
}

std::string bound_batch(const TimeEstimate& t) {
  return t.compute_bound_batch > 0 ? fmt::format("{:.0f}", std::ceil(t.compute_bound_batch)) : "never";
}

}  // namespace

std::string render_text(const PlanReport& r, const TextOptions& opt) {
  const PlanContext& c = r.ctx;
  const ModelSpec& m = c.model;
  const Workload& w = c.workload;
  std::string out;
  std::string params = fmt_count((double)r.params.total) + " params";
  if (m.is_moe()) params += " (" + fmt_count((double)r.params.active) + " active)";
  out += fmt::format("model     {} [{}]: {}; {}\n", m.name, r.model.source, params, m.summary());
  if (r.model.file) out += fmt::format("          file tensors: {} ({})\n", r.model.file->description,
                                       fmt_bytes((double)r.model.file->total_bytes()));
  out += fmt::format("hardware  {}: {}, {}", c.device.name, c.device.display, c.device.summary());
  if (!c.device.is_cpu)
    out += fmt::format("; up to {} device{} over {}", c.max_devices, c.max_devices > 1 ? "s" : "",
                       c.device.link.empty() ? fmt::format("a {:g} GB/s link", c.device.link_gbs) : c.device.link);
  out += "\n";
  out += fmt::format("workload  batch {}, context {} (prompt {} + output {}), prefill chunk {}, "
                     "KV pages of {} tokens, {}\n",
                     w.batch, w.context, w.prompt_tokens(), w.output_tokens(), w.prefill_chunk,
                     w.kv_block, w.flash_attention ? "FlashAttention" : "no FlashAttention");
  out += fmt::format("assume    usable memory {} x {:g}, runtime overhead {}/device, efficiency: "
                     "bandwidth {:g}, compute {:g}, link {:g}\n",
                     fmt_bytes((double)c.device.memory_bytes()), c.assume.mem_util,
                     fmt_bytes(c.overhead_bytes()), c.eff_bandwidth(), c.eff_flops(), c.eff_link());
  for (const std::string& n : r.notes) out += "note      " + n + "\n";
  out += "\n";

  if (r.n_fit == 0) {
    out += "nothing fits.\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    const size_t shown = std::min(r.n_fit, opt.top);
    for (size_t i = 0; i < shown; ++i) {
      const PlanOption& o = r.options[i];
      rows.push_back({std::to_string(i + 1), weights_cell(o.dep), kv_format_name(o.dep.kv),
                      std::to_string(o.dep.tp), std::to_string(o.dep.offload_layers), gb(o.mem.weights),
                      gb(o.mem.kv), gb(o.mem.activations), gb(o.mem.total) + " / " + gb(o.mem.budget),
                      fmt_seconds(o.time.ttft_s), fmt::format("{:.1f}", o.time.decode_tok_s),
                      fmt::format("{:.1f}", o.score), bound_batch(o.time), quality_cell(o)});
    }
    out += table({"#", "weights", "kv", "tp", "host layers", "weights GB", "KV GB", "act GB",
                  "total / budget GB", "TTFT", "decode tok/s", "tok/s/device", "compute-bound batch",
                  "quality"},
                 rows, {true, false, false, true, true, true, true, true, true, true, true, true, true, false});
    if (r.n_fit > shown) out += fmt::format("... {} more that fit (--top N, --all)\n", r.n_fit - shown);
  }

  const size_t n_rej = r.options.size() - r.n_fit;
  if (n_rej > 0) {
    out += fmt::format("\n{} option{} rejected", n_rej, n_rej > 1 ? "s" : "");
    const size_t show = opt.all ? n_rej : std::min<size_t>(n_rej, 4);
    out += opt.all || show == n_rej ? ":\n" : fmt::format(" (first {}; --all for every one):\n", show);
    for (size_t i = 0; i < show; ++i) {
      const PlanOption& o = r.options[r.n_fit + i];
      out += fmt::format("  {} w, {} kv, tp {}: {}\n", weights_cell(o.dep), kv_format_name(o.dep.kv),
                         o.dep.tp, o.reason);
    }
  }

  if (const PlanOption* b = r.best()) {
    const TimeEstimate& t = b->time;
    out += fmt::format("\nbest: {} -> {} of {} per device; prefill {} ({}-bound), decode {:.1f} tok/s "
                       "per sequence, {:.1f} tok/s for the batch ({}-bound, {:.1f} FLOP/B vs balance {:.0f}); "
                       "request {}; {}\n",
                       b->dep.label(), fmt_bytes((double)b->mem.total), fmt_bytes((double)b->mem.budget),
                       fmt_seconds(t.prefill.seconds), t.prefill.compute_bound ? "compute" : "memory",
                       t.decode_tok_s_seq, t.decode_tok_s, t.decode.compute_bound ? "compute" : "memory",
                       t.decode.intensity, t.machine_balance, fmt_seconds(t.request_s),
                       t.compute_bound_batch > 0
                           ? fmt::format("decode turns compute-bound at batch {}", bound_batch(t))
                           : std::string("decode stays memory-bound at any batch at this context"));
    if (r.max_batch)
      out += fmt::format("max batch at context {}: {} sequences\n", w.context, *r.max_batch);
    if (r.max_context)
      out += fmt::format("max context at batch {}: {} tokens per sequence{}\n", w.batch, *r.max_context,
                         m.max_context > 0 ? fmt::format(" (model trained for {})", m.max_context) : "");
  }

  if (opt.explain && !r.explain.empty()) {
    out += "\nexplain (best option):\n";
    for (const ExplainLine& e : r.explain) {
      out += fmt::format("  {}\n    = {}\n    = {}\n    = {}\n", e.topic, e.formula, e.substituted, e.result);
    }
  }
  return out;
}

std::string render_preset_list() {
  std::vector<std::vector<std::string>> rows;
  for (const PresetInfo& p : presets()) {
    const ModelSpec m = p.make();
    const ParamCounts pc = count_params(m);
    rows.push_back({p.name, p.hf_id, fmt_count((double)pc.total), fmt_count(p.published_params),
                    m.summary()});
  }
  return table({"preset", "hugging face id", "params", "published", "layout"}, rows,
               {false, false, true, true, false});
}

std::string render_hardware_list() {
  std::vector<std::vector<std::string>> rows;
  for (const Hardware& h : hardware_table()) {
    rows.push_back({h.name, h.display, fmt::format("{:g}", h.memory_gb), fmt::format("{:g}", h.bandwidth_gbs),
                    fmt::format("{:g}", h.bf16_tflops), h.fp8_tflops > 0 ? fmt::format("{:g}", h.fp8_tflops) : "-",
                    fmt::format("{:g}", h.int8_tops), fmt::format("{:g}", h.link_gbs), h.link});
  }
  rows.push_back({"cpu", "host CPU (--bandwidth or --measure-host)", "host", "given", "given", "-", "-",
                  "-", "-"});
  return table({"name", "device", "memory GB", "GB/s", "bf16 TFLOPS", "fp8", "int8 TOPS",
                "link GB/s/dir", "interconnect"},
               rows, {false, false, true, true, true, true, true, true, false}) +
         "Dense peaks (sparse figures are twice these and are not used). GB = 10^9 bytes.\n";
}

}  // namespace frugal::planner
