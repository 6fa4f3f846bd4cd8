// frugal eval -m MODEL --ref REF (-f TEXT | --sample-windows N) [--ctx N] [--chunks K]
//   KL divergence, top-1 agreement, Δp and both perplexities of MODEL against REF on the same
//   windows (eval/compare.h).
// frugal eval --table -m MODEL (-f TEXT | --sample-windows N) [--rows ids] [--out FILE.md]
//   the quantization quality table of MODEL (eval/quality_table.h): every method quantized in
//   memory, compared against MODEL itself.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "act_quant_flag.h"
#include "repack_flag.h"
#include "cli_util.h"
#include "commands.h"
#include "eval/compare.h"
#include "eval/quality_table.h"
#include "eval/sampled_windows.h"
#include "kv_flags.h"
#include "model/model.h"
#include "quant/model_quantizer.h"

namespace frugal::cli {

namespace {

struct EvalOptions {
  std::string model, ref, file;
  std::string act_quant = "auto";  // of -m when --ref (the table rows choose their own)
  PlacementFlags placement;          // --ref: both models run on the CPU
  int64_t sample_windows = 0;
  uint64_t seed = 1;
  int32_t bos = 1;
  bool table = false;
  std::string rows, out, calib = "../shared/data/tinyshakespeare.txt";
  int64_t calib_windows = 16, calib_len = 256;
  int threads = 0;
  KvFlags kv;
  CompareParams params;
};

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read text file " + path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The first `n_tokens` (or more) tokens of a text file: tokenizes a generous prefix only.
Result<std::vector<int32_t>> text_tokens(const Model& m, const std::string& path, int64_t n_tokens) {
  if (!m.tokenizer)
    return InvalidArgument(m.path + " carries no tokenizer: use --sample-windows for token-level evaluation");
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_file(path));
  if (n_tokens > 0 && (size_t)n_tokens * 16 < text.size()) text.resize((size_t)n_tokens * 16);
  return m.tokenizer->encode(text, false, false);
}

// Evaluation tokens: text windows, or windows sampled from `m` itself.
Result<std::vector<int32_t>> eval_tokens(const Model& m, ThreadPool& pool, const EvalOptions& o) {
  if (!o.file.empty() == (o.sample_windows > 0)) return InvalidArgument("give exactly one of -f TEXT and --sample-windows N");
  if (o.sample_windows > 0) {
    std::fprintf(stderr, "frugal: sampling %lld windows of %lld tokens from %s (temperature 1, seed %llu)\n",
                 (long long)o.sample_windows, (long long)o.params.ctx, m.path.c_str(), (unsigned long long)o.seed);
    return sample_token_windows(m, pool, {o.sample_windows, o.params.ctx, o.bos, o.seed});
  }
  if (o.file.find("shakespeare") != std::string::npos)
    std::fprintf(stderr, "frugal: warning: %s is the calibration text; scores on it are not held out\n", o.file.c_str());
  return text_tokens(m, o.file, o.params.max_chunks > 0 ? o.params.max_chunks * o.params.ctx : 0);
}

void print_compare(const CompareResult& r, const EvalOptions& o) {
  std::printf("windows %lld of ctx %lld, %lld scored positions (every token but the first of each window)\n",
              (long long)r.n_chunks, (long long)o.params.ctx, (long long)r.n_scored);
  std::printf("reference perplexity  %.4f +/- %.4f\n", r.ppl_ref, r.ppl_ref * r.nll_ref.se);
  std::printf("model perplexity      %.4f +/- %.4f  (delta %+.4f)\n", r.ppl_q, r.ppl_q * r.nll_q.se, r.ppl_q - r.ppl_ref);
  std::printf("mean KL(ref || model) %.6f +/- %.6f nats  (median %.6f, p99 %.6f, max %.6f)\n", r.kl.mean, r.kl.se,
              r.kl_median, r.kl_p99, r.kl_max);
  std::printf("top-1 agreement       %.2f%% +/- %.2f%%\n", 100 * r.top1.mean, 100 * r.top1.se);
  std::printf("delta p (ref top)     %+.5f +/- %.5f\n", r.dp.mean, r.dp.se);
  std::printf("in %.1f s\n", r.seconds);
}

int run_compare(const EvalOptions& o, ThreadPool& pool) {
  if (o.ref.empty()) return report(InvalidArgument("--ref REF is required (or --table)"));
  Result<Model> q = load_model(o.model);
  if (!q.ok()) return report(q.status());
  apply_act_quant(o.act_quant, *q);
  Result<Model> ref = load_model(o.ref);
  if (!ref.ok()) return report(ref.status());
  for (Model* mp : {&*q, &*ref})
    if (Status st = apply_placement(o.placement, *mp); !st.ok()) return report(st);
  // Tokens come from the reference (its tokenizer, or samples of it).
  Result<std::vector<int32_t>> tokens = eval_tokens(*ref, pool, o);
  if (!tokens.ok()) return report(tokens.status());
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&](int64_t done, int64_t total, double kl) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\r[%lld/%lld] mean KL %.5f  elapsed %.0f s  eta %.0f s   ", (long long)done,
                 (long long)total, kl, el, el / done * (total - done));
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
  Result<CompareResult> r = compare_models(*ref, *q, pool, *tokens, o.params, progress);
  if (!r.ok()) return report(r.status());
  print_compare(*r, o);
  return 0;
}

Result<std::vector<std::vector<int32_t>>> calib_windows(const Model& m, ThreadPool& pool, const EvalOptions& o) {
  if (o.sample_windows > 0 || o.calib == "samples") {  // calibrate on other samples of the model
    FRUGAL_ASSIGN_OR_RETURN(std::vector<int32_t> t,
                            sample_token_windows(m, pool, {o.calib_windows, o.calib_len, o.bos, o.seed + 1000003}));
    return quant::calibration_windows(t, o.calib_windows, o.calib_len);
  }
  if (o.calib.find("wikitext") != std::string::npos)
    return InvalidArgument("refusing to calibrate on " + o.calib + ": wikitext is the evaluation text");
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int32_t> t, text_tokens(m, o.calib, o.calib_windows * o.calib_len));
  return quant::calibration_windows(t, o.calib_windows, o.calib_len);
}

int run_table(const EvalOptions& o, ThreadPool& pool) {
  if (!o.ref.empty()) return report(InvalidArgument("--table compares against -m itself; drop --ref"));
  Result<Model> m = load_model(o.model);
  if (!m.ok()) return report(m.status());
  std::vector<std::string> ids;
  std::stringstream ss(o.rows);
  for (std::string id; std::getline(ss, id, ',');)
    if (!id.empty()) ids.push_back(id);
  std::string group_note;
  Result<std::vector<QualityRow>> rows = quality_rows(m->config, ids, group_note);
  if (!rows.ok()) return report(rows.status());
  Result<std::vector<int32_t>> tokens = eval_tokens(*m, pool, o);
  if (!tokens.ok()) return report(tokens.status());
  Result<std::vector<std::span<const int32_t>>> windows = eval_windows(*tokens, o.params.ctx, o.params.max_chunks);
  if (!windows.ok()) return report(windows.status());
  QualityTableParams tp;
  tp.compare = o.params;
  bool need_calib = false;
  for (const QualityRow& r : *rows) need_calib |= quant::method_needs_calibration(r.options.method);
  if (need_calib) {
    Result<std::vector<std::vector<int32_t>>> c = calib_windows(*m, pool, o);
    if (!c.ok()) return report(c.status());
    tp.calib = std::move(*c);
  }
  const std::string source =
      o.sample_windows > 0 ? fmt::format("{} windows sampled from the model (seed {})", o.sample_windows, o.seed)
                           : fmt::format("{}", o.file);
  const std::string calib_src = o.sample_windows > 0 || o.calib == "samples" ? "other samples of the model" : o.calib;
  std::string head = fmt::format(
      "Model {} (reference: its weights as loaded). Evaluation: {}, {} windows of {} tokens, every token but the "
      "first of each window scored ({} positions). Calibration (GPTQ/AWQ/SmoothQuant): {} windows of {} tokens of {}. "
      "Group: {}. Bytes: quant/layouts.h, embeddings as loaded.\n\n",
      o.model, source, windows->size(), o.params.ctx, (long long)windows->size() * (o.params.ctx - 1), o.calib_windows,
      o.calib_len, calib_src, group_note);
  std::fputs(head.c_str(), stdout);
  std::fputs(quality_table_markdown({}).c_str(), stdout);
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  double ppl_ref = 0;
  auto progress = [&](const std::string& msg) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "frugal: [%.0f s] %s\n", el, msg.c_str());
  };
  auto on_row = [&](const QualityResult& r) {
    if (r.id == "reference") ppl_ref = r.cmp.ppl_ref;
    std::fputs(quality_row_markdown(r, ppl_ref).c_str(), stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "frugal: %s: quantize %.0f s, eval %.0f s\n", r.id.c_str(), r.quantize_seconds, r.cmp.seconds);
  };
  Result<std::vector<QualityResult>> res = run_quality_table(*m, pool, *windows, *rows, tp, progress, on_row);
  if (!res.ok()) return report(res.status());
  if (!o.out.empty()) {
    std::ofstream f(o.out);
    f << head << quality_table_markdown(*res);
    if (!f) return report(IoError("cannot write " + o.out));
  }
  return 0;
}

int run_eval(const EvalOptions& o) {
  Result<KvCacheOptions> kv = kv_options(o.kv);
  if (!kv.ok()) return report(kv.status());
  EvalOptions opts = o;
  opts.params.kv = *kv;
  ThreadPool pool(o.threads);
  return o.table ? run_table(opts, pool) : run_compare(opts, pool);
}

}  // namespace

CLI::App* add_eval_subcommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub = app.add_subcommand("eval", "KL divergence / top-1 agreement against a reference; quality table");
  sub->add_option("-m,--model", o->model, "model to evaluate (with --table: the unquantized model)")->required();
  sub->add_option("--ref", o->ref, "reference model (same vocabulary)");
  add_act_quant_option(sub, &o->act_quant);
  add_placement_flags(sub, &o->placement);
  sub->add_option("-f,--file", o->file, "evaluation text");
  sub->add_option("--sample-windows", o->sample_windows,
                  "instead of text: N windows sampled from the reference (temperature 1)");
  sub->add_option("--seed", o->seed, "seed of --sample-windows")->capture_default_str();
  sub->add_option("--bos", o->bos, "first token of sampled windows")->capture_default_str();
  sub->add_option("--ctx", o->params.ctx, "window length in tokens")->capture_default_str();
  sub->add_option("--chunks", o->params.max_chunks, "number of windows (0: all)")->capture_default_str();
  sub->add_flag("--table", o->table, "quality table: quantize -m with every method and compare");
  sub->add_option("--rows", o->rows, "table rows, comma-separated ids (default set: see eval/quality_table.h)");
  sub->add_option("--out", o->out, "also write the table (Markdown) here");
  sub->add_option("--calib", o->calib, "calibration text for --table (never the evaluation text), or 'samples': windows sampled from -m (temperature 1, from --bos)")
      ->capture_default_str();
  sub->add_option("--calib-windows", o->calib_windows, "calibration windows")->capture_default_str();
  sub->add_option("--calib-len", o->calib_len, "tokens per calibration window")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  add_kv_flags(sub, o->kv);
  sub->callback([o, &exit_code] { exit_code = run_eval(*o); });
  return sub;
}

}  // namespace frugal::cli
