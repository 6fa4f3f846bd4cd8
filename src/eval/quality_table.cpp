#include "eval/quality_table.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "quant/fake_quant_model.h"
#include "quant/i8_row_model.h"
#include "quant/model_bytes.h"

namespace frugal {

namespace {

using quant::Method;
using quant::ModelQuantOptions;

ModelQuantOptions int_options(Method m, int bits, int64_t group) {
  ModelQuantOptions o;
  o.method = m;
  o.quant.bits = bits;
  o.quant.group = group;
  o.quant.symmetric = false;
  return o;
}

std::string group_name(int64_t g) { return g == quant::kPerChannel ? "per-channel" : fmt::format("g{}", g); }

}  // namespace

Result<std::vector<QualityRow>> quality_rows(const ModelConfig& c, const std::vector<std::string>& ids,
                                             std::string& group_note) {
  const int64_t widths[3] = {c.dim, c.head_dim() * c.n_heads, c.hidden_dim};
  auto divides_all = [&](int64_t g) { return widths[0] % g == 0 && widths[1] % g == 0 && widths[2] % g == 0; };
  const int64_t g = divides_all(128) ? 128 : divides_all(64) ? 64 : quant::kPerChannel;
  group_note = g == 128 ? "g128"
                        : fmt::format("{} stands in for g128: 128 does not divide every row length ({}, {}, {})",
                                      group_name(g), widths[0], widths[1], widths[2]);
  std::vector<QualityRow> all;
  {
    ModelQuantOptions o;
    o.quant.group = quant::kPerChannel;  // unused (every linear is overridden); valid for any shape
    o.per_linear.assign((size_t)c.n_layers, {});
    for (auto& layer : o.per_linear)
      for (auto& p : layer) p = quant::Precision::floating(DType::F16);
    all.push_back({"f16", "F16 (linears rounded to fp16)", o});
  }
  {
    ModelQuantOptions o = int_options(Method::kRtn, 8, quant::kPerChannel);
    o.quant.symmetric = true;
    all.push_back({"int8", "RTN INT8 per-channel sym", o});
    all.push_back({"int8-w8a8", "INT8 per-channel W8A8 (no smoothing; int8 per-token activations)", o, true});
  }
  const char* names[3] = {"RTN", "GPTQ", "AWQ"};
  const Method methods[3] = {Method::kRtn, Method::kGptq, Method::kAwq};
  const char* ids3[3] = {"rtn", "gptq", "awq"};
  for (int i = 0; i < 3; ++i)
    all.push_back({fmt::format("int4-{}", ids3[i]), fmt::format("{} INT4 {} asym", names[i], group_name(g)),
                   int_options(methods[i], 4, g)});
  {
    ModelQuantOptions o;
    o.method = Method::kSmoothQuant;
    all.push_back({"w8a8", "SmoothQuant W8A8 α 0.5 (int8 per-token activations)", o, true});
    all.push_back({"sq-w8", "SmoothQuant α 0.5 weights only (float activations)", o});
  }
  {
    ModelQuantOptions o;
    o.method = Method::kFp8;
    all.push_back({"fp8", "FP8 E4M3 per-tensor", o});
  }
  for (int i = 0; i < 3; ++i)
    all.push_back({fmt::format("int3-{}", ids3[i]), fmt::format("{} INT3 {} asym", names[i], group_name(g)),
                   int_options(methods[i], 3, g)});
  if (divides_all(32))
    all.push_back({"int4g32-rtn", "RTN INT4 g32 asym", int_options(Method::kRtn, 4, 32)});
  for (int i = 0; i < 2; ++i)
    all.push_back({fmt::format("int4ch-{}", ids3[i]), fmt::format("{} INT4 per-channel asym", names[i]),
                   int_options(methods[i], 4, quant::kPerChannel)});

  std::vector<std::string> want = ids;
  if (want.empty())
    for (const QualityRow& r : all)
      if (r.id.rfind("int4ch", 0) != 0 && r.id != "sq-w8") want.push_back(r.id);
  std::vector<QualityRow> out;
  for (const std::string& id : want) {
    auto it = std::find_if(all.begin(), all.end(), [&](const QualityRow& r) { return r.id == id; });
    if (it == all.end()) {
      std::string known;
      for (const QualityRow& r : all) known += (known.empty() ? "" : ", ") + r.id;
      return InvalidArgument(fmt::format("unknown table row '{}' for this model (rows: {})", id, known));
    }
    out.push_back(*it);
  }
  return out;
}

Result<std::vector<QualityResult>> run_quality_table(const Model& m, ThreadPool& pool,
                                                     const std::vector<std::span<const int32_t>>& windows,
                                                     const std::vector<QualityRow>& rows,
                                                     const QualityTableParams& p,
                                                     const std::function<void(const std::string&)>& progress,
                                                     const std::function<void(const QualityResult&)>& on_row) {
  for (const QualityRow& row : rows) {
    Status st = quant::validate_for_model(row.options, m.config);
    if (!st.ok()) return InvalidArgument(row.id + ": " + st.message());
    if (quant::method_needs_calibration(row.options.method) && p.calib.empty())
      return InvalidArgument(row.id + " needs calibration windows");
  }
  if (progress) progress(fmt::format("reference logits on {} windows", windows.size()));
  FRUGAL_ASSIGN_OR_RETURN(ReferenceRun ref, run_reference(m, pool, windows, p.compare));
  std::vector<QualityResult> out;
  {
    QualityResult r;
    r.id = "reference";
    r.label = "reference (the model as loaded)";
    const quant::ModelBytes b = quant::model_bytes(m);
    std::string types;
    for (const auto& [name, bytes] : m.weight_bytes_by_dtype()) types += (types.empty() ? "" : "+") + name;
    r.precision = types;
    r.bits_per_weight = b.linear_bits_per_weight();
    r.model_bytes = b.total();
    FRUGAL_ASSIGN_OR_RETURN(r.cmp, compare_to_reference(m, ref, pool, p.compare));
    if (on_row) on_row(r);
    out.push_back(std::move(r));
  }
  for (const QualityRow& row : rows) {
    if (progress) progress("quantizing: " + row.label);
    const auto t0 = std::chrono::steady_clock::now();
    const bool calibrated = quant::method_needs_calibration(row.options.method);
    FRUGAL_ASSIGN_OR_RETURN(quant::ModelQuantResult qr,
                            quant::quantize_model(m, row.options, calibrated ? p.calib : std::vector<std::vector<int32_t>>{},
                                                  pool));
    QualityResult r;
    r.id = row.id;
    r.label = row.label;
    r.quantize_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.precision = quant::precision_name(quant::default_precision(row.options));
    if (!row.options.per_linear.empty()) r.precision = quant::precision_name(qr.layers[0].linears[0].precision);
    const quant::ModelBytes b = quant::model_bytes(m, qr);
    r.bits_per_weight = b.linear_bits_per_weight();
    r.model_bytes = b.total();
    Model qm;
    if (row.int8_token_acts) {
      FRUGAL_ASSIGN_OR_RETURN(qm, quant::model_with_i8_row_layers(m, qr));
    } else {
      qm = quant::model_with_quantized_layers(m, qr);
    }
    if (progress) progress("evaluating: " + row.label);
    FRUGAL_ASSIGN_OR_RETURN(r.cmp, compare_to_reference(qm, ref, pool, p.compare));
    if (on_row) on_row(r);
    out.push_back(std::move(r));
  }
  return out;
}

std::string quality_row_markdown(const QualityResult& r, double ppl_ref) {
  return fmt::format("| {} | {} | {:.3f} | {} | {:.3f} | {:+.3f} | {:.5f} ± {:.5f} | {:.2f}% | {:+.4f} |\n", r.label,
                     r.precision, r.bits_per_weight, r.model_bytes, r.cmp.ppl_q, r.cmp.ppl_q - ppl_ref, r.cmp.kl.mean,
                     r.cmp.kl.se, 100.0 * r.cmp.top1.mean, r.cmp.dp.mean);
}

std::string quality_table_markdown(const std::vector<QualityResult>& results) {
  std::string s =
      "| method | precision | bits/weight (linears) | model bytes | PPL | ΔPPL | mean KL (nats) | top-1 agree | Δp |\n"
      "|---|---|---|---|---|---|---|---|---|\n";
  const double ppl_ref = results.empty() ? 0 : results[0].cmp.ppl_ref;
  for (const QualityResult& r : results) s += quality_row_markdown(r, ppl_ref);
  return s;
}

}  // namespace frugal
