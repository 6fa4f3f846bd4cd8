#include "quant/model_quantizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "base/half.h"
#include "quant/ggml_blocks.h"
#include "quant/smoothquant.h"

namespace frugal::quant {

const char* method_name(Method m) {
  switch (m) {
    case Method::kRtn: return "rtn";
    case Method::kGptq: return "gptq";
    case Method::kAwq: return "awq";
    case Method::kSmoothQuant: return "smoothquant";
    case Method::kFp8: return "fp8";
  }
  return "?";
}

std::optional<Method> method_from_name(std::string_view s) {
  for (Method m : {Method::kRtn, Method::kGptq, Method::kAwq, Method::kSmoothQuant, Method::kFp8})
    if (s == method_name(m)) return m;
  return std::nullopt;
}

Precision default_precision(const ModelQuantOptions& o) {
  switch (o.method) {
    case Method::kFp8: {
      Precision p;
      p.kind = Precision::Kind::kFp8;
      p.fp8 = o.fp8;
      p.fp8_per_channel = o.fp8_per_channel;
      return p;
    }
    case Method::kSmoothQuant: return Precision::integer(8, kPerChannel, true);
    default: break;
  }
  Precision p;
  p.kind = Precision::Kind::kInt;
  p.quant = o.quant;
  return p;
}

Precision linear_precision(const ModelQuantOptions& o, int L, int i) {
  if (L >= 0 && L < (int)o.per_linear.size() && o.per_linear[L][i]) {
    Precision p = *o.per_linear[L][i];
    if (p.kind == Precision::Kind::kInt) {  // the run's clip-search settings apply to overrides too
      p.quant.mse_clip = o.quant.mse_clip;
      p.quant.clip_grid = o.quant.clip_grid;
      p.quant.clip_max_shrink = o.quant.clip_max_shrink;
    }
    return p;
  }
  return default_precision(o);
}

namespace {

Status validate_per_linear(const ModelQuantOptions& o, const ModelConfig& c) {
  if (o.per_linear.empty()) return Status::Ok();
  if ((int)o.per_linear.size() != c.n_layers)
    return InvalidArgument(fmt::format("mixed-precision map has {} layers, the model {}", o.per_linear.size(), c.n_layers));
  const int64_t qd = c.head_dim() * c.n_heads;
  const int64_t cols[7] = {c.dim, c.dim, c.dim, qd, c.dim, c.dim, c.hidden_dim};
  for (int L = 0; L < c.n_layers; ++L)
    for (int i = 0; i < 7; ++i) {
      if (!o.per_linear[L][i]) continue;
      const Precision& p = *o.per_linear[L][i];
      if (p.kind == Precision::Kind::kInt && o.method != Method::kRtn && p.quant.group == kPerTensor)
        return InvalidArgument(fmt::format("blk.{}.{}: {} needs per-channel or group-wise scales", L, kLinearNames[i],
                                           method_name(o.method)));
      Status st = validate_precision(p, cols[i]);
      if (!st.ok()) return InvalidArgument(fmt::format("blk.{}.{} as {}: {}", L, kLinearNames[i], precision_name(p), st.message()));
    }
  return Status::Ok();
}

}  // namespace

Status validate_for_model(const ModelQuantOptions& o, const ModelConfig& c) {
  FRUGAL_RETURN_IF_ERROR(validate_per_linear(o, c));
  if (o.method == Method::kFp8 || o.method == Method::kSmoothQuant) return Status::Ok();
  if (o.method != Method::kRtn && o.quant.group == kPerTensor)
    return InvalidArgument(fmt::format("{} needs per-channel or group-wise scales", method_name(o.method)));
  for (int64_t cols : {c.dim, c.head_dim() * c.n_heads, c.hidden_dim}) {
    Status st = validate(o.quant, cols);
    if (!st.ok()) return InvalidArgument(st.message() + " (a row length of this model)");
  }
  return Status::Ok();
}

Result<std::vector<std::vector<int32_t>>> calibration_windows(const std::vector<int32_t>& tokens, int64_t n,
                                                              int64_t len) {
  if (n <= 0 || len <= 1) return InvalidArgument("calibration needs at least one window of 2+ tokens");
  if ((int64_t)tokens.size() < n * len)
    return InvalidArgument(fmt::format("calibration text has {} tokens; {} windows of {} need {}", tokens.size(), n,
                                       len, n * len));
  std::vector<std::vector<int32_t>> w;
  const int64_t stride = n > 1 ? ((int64_t)tokens.size() - len) / (n - 1) : 0;
  for (int64_t i = 0; i < n; ++i) w.emplace_back(tokens.begin() + i * stride, tokens.begin() + i * stride + len);
  return w;
}

namespace {

using Mat = std::vector<float>;

Mat to_float(const TensorView& t) {
  Mat out((size_t)t.numel());
  for (int64_t r = 0; r < t.rows(); ++r) cpu::dequantize_weight_row(t, r, out.data() + r * t.cols());
  return out;
}

// Y [T, rows] = X [T, cols] · Wᵀ.
void linear(ThreadPool& pool, const Mat& w, int64_t rows, int64_t cols, const Mat& x, int64_t T, Mat& y) {
  TensorView v;
  v.dtype = DType::F32;
  v.shape = {rows, cols};
  v.data = w.data();
  v.nbytes = w.size() * sizeof(float);
  y.assign((size_t)(T * rows), 0.0f);
  cpu::matmul(v, x.data(), T, y.data(), pool);
}

void rmsnorm_rows(const Mat& x, const Mat& w, float eps, int64_t T, int64_t dim, Mat& y) {
  y.resize(x.size());
  for (int64_t t = 0; t < T; ++t) cpu::rmsnorm(x.data() + t * dim, w.data(), eps, dim, y.data() + t * dim);
}

// Every `step`-th token of X [T, n] (at most `max_tokens`), for the costlier searches.
Mat subsample(const Mat& x, int64_t T, int64_t n, int64_t max_tokens, int64_t& out_T) {
  const int64_t step = std::max<int64_t>(1, (T + max_tokens - 1) / max_tokens);
  Mat s;
  out_T = 0;
  for (int64_t t = 0; t < T; t += step, ++out_T) s.insert(s.end(), x.begin() + t * n, x.begin() + (t + 1) * n);
  return s;
}

// ‖(W − E)·Xᵀ‖² / ‖W·Xᵀ‖² over X [T, cols].
double rel_output_error(const Mat& w, const Mat& e, int64_t rows, int64_t cols, const Mat& x, int64_t T) {
  double num = 0, den = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < T; ++t) {
      float a = 0, b = 0;
      const float* xt = x.data() + t * cols;
      for (int64_t j = 0; j < cols; ++j) {
        a += w[r * cols + j] * xt[j];
        b += (w[r * cols + j] - e[r * cols + j]) * xt[j];
      }
      num += (double)b * b;
      den += (double)a * a;
    }
  return den > 0 ? num / den : 0;
}

struct Ctx {
  const ModelQuantOptions& o;
  ThreadPool& pool;
  bool passthrough = false;  // keep float weights (checks the runner against the engine)
  std::vector<std::pair<double, double>>* errors = nullptr;  // (rtn, method) per linear
};

// Quantize one linear W [rows, cols] whose inputs are X [T, cols] (X unused by RTN/FP8) to
// precision `prec`; integer precisions go through the run's method.
Result<QuantizedLinearOut> quantize_linear(const Ctx& c, const Precision& prec, const Mat& w, int64_t rows,
                                           int64_t cols, const Mat& x, int64_t T, const std::vector<double>* hessian) {
  QuantizedLinearOut out;
  out.rows = rows;
  out.cols = cols;
  out.precision = prec;
  if (c.passthrough) {
    out.effective = w;
    out.precision = Precision::floating(DType::F32);
    return out;
  }
  // Linears that are not integer-quantized still take their slot in the GPTQ error list.
  if (prec.kind != Precision::Kind::kInt && c.errors && c.o.method == Method::kGptq)
    c.errors->push_back({std::nan(""), std::nan("")});
  if (prec.kind == Precision::Kind::kFloat) {
    out.effective = w;
    if (prec.float_type == DType::F16)
      for (float& v : out.effective) v = fp16_to_f32(f32_to_fp16(v));
    return out;
  }
  if (prec.kind == Precision::Kind::kFp8) {
    FRUGAL_ASSIGN_OR_RETURN(Fp8Matrix q, quantize_fp8(w.data(), rows, cols, prec.fp8, prec.fp8_per_channel));
    out.effective = dequantize(q);
    out.fp8 = std::move(q);
    return out;
  }
  switch (c.o.method) {
    case Method::kRtn:
    case Method::kFp8:
    case Method::kSmoothQuant: {
      FRUGAL_ASSIGN_OR_RETURN(QuantizedMatrix q, quantize_rtn(w.data(), rows, cols, prec.quant));
      out.effective = dequantize(q);
      out.q = std::move(q);
      break;
    }
    case Method::kGptq: {
      GptqParams p = c.o.gptq;
      p.quant = prec.quant;
      FRUGAL_ASSIGN_OR_RETURN(QuantizedMatrix q, quantize_gptq(w.data(), rows, cols, *hessian, p));
      out.effective = dequantize(q);
      out.q = std::move(q);
      break;
    }
    case Method::kAwq: {
      AwqParams p = c.o.awq;
      p.quant = prec.quant;
      int64_t Ts = 0;
      const Mat xs = subsample(x, T, cols, 512, Ts);
      FRUGAL_ASSIGN_OR_RETURN(QuantizedMatrix q, awq_quantize_clipped(w.data(), rows, cols, xs.data(), Ts, p));
      out.effective = dequantize(q);
      out.q = std::move(q);
      break;
    }
  }
  if (c.errors && c.o.method == Method::kGptq) {
    // Relative output error of plain RTN vs GPTQ on ≤ 256 of the calibration tokens.
    int64_t Ts = 0;
    const Mat xs = subsample(x, T, cols, 256, Ts);
    FRUGAL_ASSIGN_OR_RETURN(QuantizedMatrix r, quantize_rtn(w.data(), rows, cols, prec.quant));
    c.errors->push_back({rel_output_error(w, dequantize(r), rows, cols, xs, Ts),
                         rel_output_error(w, out.effective, rows, cols, xs, Ts)});
  }
  return out;
}

// AWQ / SmoothQuant scale for linears sharing input X [T, n] that follow an RMSNorm: scales the
// weights, divides the norm weight and X by s. Returns a note.
Result<std::string> smooth_shared_input(const Ctx& c, std::vector<Mat*> ws, std::vector<int64_t> rows, Mat& norm,
                                        Mat& x, int64_t T, int64_t n) {
  std::vector<float> s;
  std::string note;
  if (c.passthrough) return std::string();
  if (c.o.method == Method::kAwq) {
    AwqParams p = c.o.awq;
    p.quant = c.o.quant;
    int64_t Ts = 0;
    const Mat xs = subsample(x, T, n, 256, Ts);
    std::vector<LinearRef> refs;
    for (size_t i = 0; i < ws.size(); ++i) refs.push_back({ws[i]->data(), rows[i]});
    FRUGAL_ASSIGN_OR_RETURN(AwqScaleResult r, awq_search_scales(xs.data(), Ts, n, refs, p));
    s = r.scales;
    note = fmt::format("α={:.2f} err {:.3g}→{:.3g}", r.alpha, r.error_rtn, r.error);
  } else if (c.o.method == Method::kSmoothQuant) {
    std::vector<float> amax((size_t)n, 0.0f), wmax((size_t)n, 0.0f);
    activation_absmax(x.data(), T, n, amax);
    for (size_t i = 0; i < ws.size(); ++i) column_absmax(ws[i]->data(), rows[i], n, wmax);
    FRUGAL_ASSIGN_OR_RETURN(s, smoothquant_scales(amax, wmax, c.o.smooth_alpha));
    note = fmt::format("α={:.2f}", c.o.smooth_alpha);
  } else {
    return std::string();
  }
  for (size_t i = 0; i < ws.size(); ++i) awq_scale_weights(ws[i]->data(), rows[i], n, s);
  awq_fold_into_norm(norm.data(), n, s);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < n; ++j) x[t * n + j] /= s[j];
  return note;
}

}  // namespace

namespace {

Result<ModelQuantResult> run_model(const Model& m, const ModelQuantOptions& o,
                                   const std::vector<std::vector<int32_t>>& calib, ThreadPool& pool,
                                   const std::function<void(const LayerProgress&)>& progress, bool passthrough,
                                   std::vector<float>* final_hidden) {
  const ModelConfig& cfg = m.config;
  const bool calibrated = passthrough || method_needs_calibration(o.method);
  if (calibrated && calib.empty()) return InvalidArgument(fmt::format("{} needs calibration windows", method_name(o.method)));
  const int64_t dim = cfg.dim, hd = cfg.head_dim(), qd = hd * cfg.n_heads, kvd = cfg.kv_dim(), hid = cfg.hidden_dim;
  const int64_t len = calibrated ? (int64_t)calib[0].size() : 0;
  const int64_t T = calibrated ? len * (int64_t)calib.size() : 0;
  std::vector<std::pair<double, double>> errs;
  Ctx c{o, pool, passthrough, &errs};

  // Hidden states of all calibration tokens [T, dim], from the embedding table.
  Mat X;
  if (calibrated) {
    X.resize((size_t)(T * dim));
    const TensorView& emb = m.weights.token_embd;
    for (size_t w = 0; w < calib.size(); ++w) {
      if ((int64_t)calib[w].size() != len) return InvalidArgument("calibration windows differ in length");
      for (int64_t i = 0; i < len; ++i) {
        const int32_t tok = calib[w][i];
        if (tok < 0 || tok >= emb.rows()) return OutOfRange(fmt::format("calibration token {} out of range", tok));
        cpu::dequantize_weight_row(emb, tok, X.data() + ((int64_t)w * len + i) * dim);
      }
    }
  }

  ModelQuantResult res;
  const auto t0 = std::chrono::steady_clock::now();
  Mat xn, q, k, v, att, y, g, u;
  for (int L = 0; L < cfg.n_layers; ++L) {
    const LayerWeights& lw = m.weights.layers[L];
    QuantizedLayer ql;
    ql.attn_norm = to_float(lw.attn_norm);
    ql.ffn_norm = to_float(lw.ffn_norm);
    Mat W[7] = {to_float(lw.wq), to_float(lw.wk), to_float(lw.wv), to_float(lw.wo),
                to_float(lw.w_gate), to_float(lw.w_up), to_float(lw.w_down)};
    const int64_t rows[7] = {qd, kvd, kvd, dim, hid, hid, dim};
    const int64_t cols[7] = {dim, dim, dim, qd, dim, dim, hid};
    std::string note;
    if (!calibrated) {
      for (int i = 0; i < 7; ++i) {
        FRUGAL_ASSIGN_OR_RETURN(ql.linears[i], quantize_linear(c, linear_precision(o, L, i), W[i], rows[i], cols[i], X, 0, nullptr));
      }
    } else {
      // ---- attention: q, k, v share xn = attn_norm(X)
      rmsnorm_rows(X, ql.attn_norm, cfg.norm_eps, T, dim, xn);
      FRUGAL_ASSIGN_OR_RETURN(std::string n1, smooth_shared_input(c, {&W[0], &W[1], &W[2]}, {qd, kvd, kvd},
                                                                  ql.attn_norm, xn, T, dim));
      std::optional<HessianAccumulator> h;
      if (o.method == Method::kGptq) { h.emplace(dim); h->add(xn.data(), T); }
      for (int i = 0; i < 3; ++i) {
        FRUGAL_ASSIGN_OR_RETURN(ql.linears[i], quantize_linear(c, linear_precision(o, L, i), W[i], rows[i], cols[i], xn, T, h ? &h->hessian() : nullptr));
      }
      linear(pool, ql.linears[0].effective, qd, dim, xn, T, q);
      linear(pool, ql.linears[1].effective, kvd, dim, xn, T, k);
      linear(pool, ql.linears[2].effective, kvd, dim, xn, T, v);
      const cpu::RopeStyle style = cfg.rope_layout == RopeLayout::kHalf ? cpu::RopeStyle::kHalf : cpu::RopeStyle::kAdjacent;
      for (int64_t t = 0; t < T; ++t) {
        cpu::rope(q.data() + t * qd, cfg.n_heads, (int)hd, t % len, cfg.rope_base, style);
        cpu::rope(k.data() + t * kvd, cfg.n_kv_heads, (int)hd, t % len, cfg.rope_base, style);
      }
      att.assign((size_t)(T * qd), 0.0f);
      cpu::AttentionParams ap{cfg.n_heads, cfg.n_kv_heads, (int)hd, len, kvd};
      for (size_t w = 0; w < calib.size(); ++w) {
        const int64_t off = (int64_t)w * len;
        cpu::attention_prefill(ap, len, 0, q.data() + off * qd, k.data() + off * kvd, v.data() + off * kvd,
                               att.data() + off * qd, pool);
      }
      if (o.method == Method::kGptq) { h.emplace(qd); h->add(att.data(), T); }
      FRUGAL_ASSIGN_OR_RETURN(ql.linears[3], quantize_linear(c, linear_precision(o, L, 3), W[3], dim, qd, att, T, h ? &h->hessian() : nullptr));
      linear(pool, ql.linears[3].effective, dim, qd, att, T, y);
      for (size_t i = 0; i < X.size(); ++i) X[i] += y[i];
      // ---- MLP: gate, up share xn = ffn_norm(X)
      rmsnorm_rows(X, ql.ffn_norm, cfg.norm_eps, T, dim, xn);
      FRUGAL_ASSIGN_OR_RETURN(std::string n2, smooth_shared_input(c, {&W[4], &W[5]}, {hid, hid}, ql.ffn_norm, xn, T, dim));
      if (o.method == Method::kGptq) { h.emplace(dim); h->add(xn.data(), T); }
      for (int i = 4; i < 6; ++i) {
        FRUGAL_ASSIGN_OR_RETURN(ql.linears[i], quantize_linear(c, linear_precision(o, L, i), W[i], hid, dim, xn, T, h ? &h->hessian() : nullptr));
      }
      linear(pool, ql.linears[4].effective, hid, dim, xn, T, g);
      linear(pool, ql.linears[5].effective, hid, dim, xn, T, u);
      cpu::swiglu(g.data(), u.data(), g.data(), (int64_t)g.size());
      if (o.method == Method::kGptq) { h.emplace(hid); h->add(g.data(), T); }
      FRUGAL_ASSIGN_OR_RETURN(ql.linears[6], quantize_linear(c, linear_precision(o, L, 6), W[6], dim, hid, g, T, h ? &h->hessian() : nullptr));
      linear(pool, ql.linears[6].effective, dim, hid, g, T, y);
      for (size_t i = 0; i < X.size(); ++i) X[i] += y[i];
      ql.norms_changed = o.method == Method::kAwq || o.method == Method::kSmoothQuant;
      if (!n1.empty()) note = fmt::format("layer {}: attn {}, mlp {}", L, n1, n2);
    }
    if (!errs.empty()) {
      note += fmt::format("{}rel. output error rtn→{}:", note.empty() ? fmt::format("layer {}: ", L) : ", ",
                          method_name(o.method));
      for (size_t i = 0; i < errs.size() && i < 7; ++i)
        if (!std::isnan(errs[i].first)) note += fmt::format(" {} {:.2e}→{:.2e}", kLinearNames[i], errs[i].first, errs[i].second);
      errs.clear();
    }
    if (!note.empty()) res.notes.push_back(note);
    res.layers.push_back(std::move(ql));
    if (progress) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress({L + 1, cfg.n_layers, el, el / (L + 1) * (cfg.n_layers - L - 1)});
    }
  }
  if (final_hidden) *final_hidden = std::move(X);
  return res;
}

}  // namespace

Result<ModelQuantResult> quantize_model(const Model& m, const ModelQuantOptions& o,
                                        const std::vector<std::vector<int32_t>>& calib, ThreadPool& pool,
                                        const std::function<void(const LayerProgress&)>& progress) {
  FRUGAL_RETURN_IF_ERROR(validate_for_model(o, m.config));
  return run_model(m, o, calib, pool, progress, false, nullptr);
}

Result<std::vector<float>> calibration_forward_logits(const Model& m, const std::vector<int32_t>& window,
                                                      ThreadPool& pool) {
  std::vector<float> X;
  FRUGAL_RETURN_IF_ERROR(run_model(m, ModelQuantOptions{}, {window}, pool, {}, true, &X).status());
  const int64_t dim = m.config.dim;
  const Mat norm = to_float(m.weights.output_norm);
  Mat xn(dim), logits;
  cpu::rmsnorm(X.data() + (int64_t)(window.size() - 1) * dim, norm.data(), m.config.norm_eps, dim, xn.data());
  const Mat out = to_float(m.weights.output);
  linear(pool, out, m.weights.output.rows(), dim, xn, 1, logits);
  return logits;
}

}  // namespace frugal::quant
