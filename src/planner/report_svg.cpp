// SVG charts, written by hand (no dependency): panel 1 stacks each option's per-device memory
// (weights, KV, activations, overhead) against the budget line; panel 2 plots KV-cache bytes per
// device against context length for each KV format, with the memory left for KV as a line.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "planner/memory_model.h"
#include "planner/report.h"
#include "planner/units.h"

namespace frugal::planner {

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

constexpr double kWidth = 900, kLeft = 210, kRight = 40;
constexpr const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#bab0ac", "#e15759", "#76b7b2",
                                   "#edc948", "#b07aa1"};

std::string text(double x, double y, const std::string& s, const char* anchor = "start", int size = 12) {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\" text-anchor=\"{}\">{}</text>\n", x,
                     y, size, anchor, esc(s));
}

// "Nice" axis maximum and tick step for values up to v.
std::pair<double, double> nice_axis(double v) {
  if (v <= 0) return {1, 0.25};
  const double mag = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= v) return {m * mag, m * mag / 5};
  return {10 * mag, 2 * mag};
}

std::string memory_panel(const PlanReport& r, double y0, double* height) {
  std::vector<const PlanOption*> rows;
  for (size_t i = 0; i < r.n_fit && rows.size() < 8; ++i) rows.push_back(&r.options[i]);
  size_t rejected = 0;
  for (size_t i = r.n_fit; i < r.options.size() && rejected < 4; ++i)
    if (r.options[i].mem.budget > 0) {
      rows.push_back(&r.options[i]);
      ++rejected;
    }
  const double bar = 18, gap = 8, top = y0 + 40;
  *height = 40 + rows.size() * (bar + gap) + 50;
  std::string s = text(20, y0 + 20, "Memory per device by option (GB); dashed line: budget", "start", 14);
  if (rows.empty()) return s + text(20, top + 10, "no option could be evaluated");
  double vmax = 0;
  for (const PlanOption* o : rows) vmax = std::max<double>({vmax, (double)o->mem.total, (double)o->mem.budget});
  const auto [axis, step] = nice_axis(vmax / 1e9);
  const double plot_w = kWidth - kLeft - kRight;
  auto xof = [&](double gbv) { return kLeft + gbv / axis * plot_w; };
  for (size_t i = 0; i < rows.size(); ++i) {
    const PlanOption& o = *rows[i];
    const double y = top + i * (bar + gap);
    const std::string label = fmt::format("{}{} w, {} kv, tp {}{}", o.fits ? "" : "x ",
                                          o.dep.file_weights ? "file" : weight_format_name(o.dep.weights),
                                          kv_format_name(o.dep.kv), o.dep.tp,
                                          o.dep.offload_layers ? fmt::format(", {} host", o.dep.offload_layers) : "");
    s += text(kLeft - 8, y + 13, label, "end", 11);
    const double parts[] = {(double)o.mem.weights, (double)o.mem.kv, (double)o.mem.activations,
                            (double)o.mem.overhead};
    double x = kLeft;
    for (int p = 0; p < 4; ++p) {
      const double wdt = parts[p] / 1e9 / axis * plot_w;
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\"/>\n", x, y,
                       std::max(0.0, wdt), bar, kColors[p]);
      x += wdt;
    }
    s += text(x + 4, y + 13, fmt::format("{:.1f}", (double)o.mem.total / 1e9), "start", 10);
  }
  const double budget = (double)rows[0]->mem.budget / 1e9;
  const double bottom = top + rows.size() * (bar + gap);
  s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#e15759\" "
                   "stroke-dasharray=\"5,4\" stroke-width=\"2\"/>\n",
                   xof(budget), top - 6, bottom);
  for (double v = 0; v <= axis + 1e-9; v += step)
    s += text(xof(v), bottom + 14, fmt::format("{:g}", v), "middle", 10);
  const char* names[] = {"weights", "KV cache", "activations", "overhead"};
  for (int p = 0; p < 4; ++p) {
    const double lx = kLeft + p * 120;
    s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n", lx,
                     bottom + 24, kColors[p]);
    s += text(lx + 16, bottom + 34, names[p], "start", 11);
  }
  return s;
}

std::string kv_panel(const PlanReport& r, double y0, double* height) {
  *height = 330;
  const PlanContext& c = r.ctx;
  const PlanOption* ref = r.best();
  if (!ref) {
    for (const PlanOption& o : r.options)
      if (o.mem.budget > 0) { ref = &o; break; }
  }
  std::string s = text(20, y0 + 20,
                       fmt::format("KV cache per device vs context (batch {}); dashed: memory left for KV",
                                   c.workload.batch), "start", 14);
  if (!ref) return s;
  const int kvpd = ref->mem.sharded.kv_heads, layers = ref->mem.device_layers;
  const double left_for_kv = (double)ref->mem.budget - (double)ref->mem.weights -
                             (double)ref->mem.activations - (double)ref->mem.overhead;
  const int64_t xmax = std::max<int64_t>({c.workload.context, c.model.max_context, 1024});
  const KvFormat kinds[] = {KvFormat::kF16, KvFormat::kFP8, KvFormat::kQ8_0, KvFormat::kInt4, KvFormat::kQ4_0};
  auto kv_at = [&](KvFormat f, double ctx_tokens) {
    const double paged = std::ceil(ctx_tokens / c.workload.kv_block) * c.workload.kv_block;
    return (double)c.workload.batch * paged * (double)kv_bytes_per_token(c.model, f, kvpd, layers);
  };
  const double ymax_raw = std::max(kv_at(KvFormat::kF16, (double)xmax), std::max(left_for_kv, 0.0)) / 1e9;
  const auto [yaxis, ystep] = nice_axis(ymax_raw);
  const auto [xaxis, xstep] = nice_axis((double)xmax);
  const double top = y0 + 40, plot_h = 220, plot_w = kWidth - kLeft - kRight;
  auto X = [&](double t) { return kLeft + t / xaxis * plot_w; };
  auto Y = [&](double gbv) { return top + plot_h - std::min(gbv, yaxis) / yaxis * plot_h; };
  s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
                   "stroke=\"#999\"/>\n", kLeft, top, plot_w, plot_h);
  for (double v = 0; v <= yaxis + 1e-9; v += ystep)
    s += text(kLeft - 6, Y(v) + 4, fmt::format("{:g} GB", v), "end", 10);
  for (double t = 0; t <= xaxis + 1e-9; t += xstep)
    s += text(X(t), top + plot_h + 14, fmt::format("{:g}", t), "middle", 10);
  s += text(kLeft + plot_w / 2, top + plot_h + 30, "context tokens per sequence", "middle", 11);
  int ci = 0;
  for (KvFormat f : kinds) {
    std::string pts;
    for (int i = 0; i <= 64; ++i) {
      const double t = xaxis * i / 64.0;
      pts += fmt::format("{:.1f},{:.1f} ", X(t), Y(kv_at(f, t) / 1e9));
    }
    static const char* kKvColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2"};
    const char* col = kKvColors[ci % 5];
    s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", pts, col);
    s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"3\" fill=\"{}\"/>\n",
                     kLeft + ci * 110, top + plot_h + 42, col);
    s += text(kLeft + ci * 110 + 16, top + plot_h + 47, kv_format_name(f), "start", 11);
    ++ci;
  }
  if (left_for_kv > 0)
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e15759\" "
                     "stroke-dasharray=\"5,4\" stroke-width=\"2\"/>\n",
                     kLeft, Y(left_for_kv / 1e9), kLeft + plot_w, Y(left_for_kv / 1e9));
  return s;
}

}  // namespace

std::string render_svg(const PlanReport& r) {
  double h1 = 0, h2 = 0;
  const std::string title = fmt::format("frugal plan: {} on {}", r.ctx.model.name, r.ctx.device.name);
  std::string p1 = memory_panel(r, 30, &h1);
  std::string p2 = kv_panel(r, 30 + h1, &h2);
  const double height = 30 + h1 + h2 + 10;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" "
      "font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      kWidth, height, kWidth, height);
  s += text(20, 22, title, "start", 16);
  s += p1 + p2 + "</svg>\n";
  return s;
}

}  // namespace frugal::planner
