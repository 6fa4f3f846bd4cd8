// frugal quantize IN OUT --method rtn|gptq|awq|smoothquant|fp8 [--bits B] [--group G] [--sym|--asym]
//                 [--calib TEXT] [--calib-windows N] [--calib-len L] ...
// IN: a GGUF model. OUT: a .gguf file (ggml types where the layout matches, else dequantized F32
// "fake quant" tensors; see quant/gguf_export.h), or any other name: a Hugging Face directory
// (AutoGPTQ / AutoAWQ / compressed-tensors; see quant/hf_export.h; IN may then also be an HF
// directory). Every check runs before the long work starts.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli_util.h"
#include "commands.h"
#include "mixed_precision_flags.h"
#include "formats/gguf.h"
#include "eval/sampled_windows.h"
#include "model/model.h"
#include "quant/gguf_export.h"
#include "quant/hf_export.h"
#include "quant/layouts.h"
#include "quant/model_quantizer.h"

namespace frugal::cli {

namespace {

struct QuantizeOptions {
  std::string in, out, method = "rtn", calib = "../shared/data/tinyshakespeare.txt", fp8 = "e4m3";
  int bits = 4;
  int64_t group = 128;
  bool sym = false, asym = false, clip = false, act_order = false, static_groups = false, fp8_channel = false;
  double damp = 0.01, alpha = 0.5;
  int64_t calib_windows = 128, calib_len = 512;
  int32_t bos = 1;            // --calib samples: first token of each window
  uint64_t calib_seed = 1000004;  // --calib samples (= frugal eval --table --calib samples, seed 1)
  int threads = 0;
  MixedPrecisionFlags mixed;  // --keep / --policy / --budget
  bool dir_f32 = false;  // directory output: unquantized tensors in F32
};

// OUT names a directory unless it ends in .gguf.
bool is_dir_output(const std::string& out) { return std::filesystem::path(out).extension() != ".gguf"; }

Status check_output_path(const std::string& out) {
  namespace fs = std::filesystem;
  if (is_dir_output(out)) return quant::check_hf_output_dir(out);
  fs::path dir = fs::path(out).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir)) return NotFound("output directory " + dir.string() + " does not exist");
  if (access(dir.c_str(), W_OK) != 0) return IoError("output directory " + dir.string() + " is not writable");
  if (fs::is_directory(out)) return InvalidArgument("output path " + out + " is a directory");
  return Status::Ok();
}

int run_quantize(const QuantizeOptions& a) {
  using namespace frugal::quant;
  const std::optional<Method> method = method_from_name(a.method);
  if (!method) return report(InvalidArgument("unknown method '" + a.method + "' (rtn, gptq, awq, smoothquant, fp8)"));
  if (a.sym && a.asym) return report(InvalidArgument("--sym and --asym exclude each other"));
  ModelQuantOptions o;
  o.method = *method;
  o.quant.bits = a.bits;
  o.quant.group = a.group;
  o.quant.symmetric = a.sym;
  o.quant.mse_clip = a.clip;
  o.gptq.damp = a.damp;
  o.gptq.act_order = a.act_order;
  o.gptq.static_groups = a.static_groups;
  o.smooth_alpha = a.alpha;
  o.fp8_per_channel = a.fp8_channel;
  if (a.fp8 == "e4m3") o.fp8 = Fp8Format::kE4M3;
  else if (a.fp8 == "e5m2") o.fp8 = Fp8Format::kE5M2;
  else return report(InvalidArgument("--fp8 must be e4m3 or e5m2"));
  if (a.static_groups && !a.act_order) return report(InvalidArgument("--static-groups needs --act-order"));
  if ((a.act_order || a.damp != 0.01) && o.method != Method::kGptq)
    return report(InvalidArgument("--act-order/--damp apply to --method gptq only"));
  if (!(a.alpha >= 0 && a.alpha <= 1)) return report(InvalidArgument("--alpha must be in [0, 1]"));
  if (Status st = check_output_path(a.out); !st.ok()) return report(st);
  const bool dir_out = is_dir_output(a.out);
  Result<gguf::GgufFile> file = dir_out ? Result<gguf::GgufFile>(NotFound("unused")) : gguf::GgufFile::open(a.in);
  if (!dir_out && !file.ok()) return report(file.status());
  Result<Model> loaded = load_model(a.in);
  if (!loaded.ok()) return report(loaded.status());
  const Model& m = *loaded;
  if (Status st = validate_for_model(o, m.config); !st.ok()) return report(st);
  if (dir_out) {
    if (Result<HfQuantConfig> hc = validate_hf_export(o, m.config); !hc.ok()) return report(hc.status());
  }
  if (mixed_precision_requested(a.mixed)) {
    if (dir_out) return report(Unsupported("mixed precision (--keep/--policy/--budget) writes .gguf output only"));
    if (a.calib == "samples")
      return report(Unsupported("--calib samples with --keep/--policy/--budget (the sensitivity pass reads a text)"));
    if (Status st = apply_mixed_precision_flags(a.mixed, m, o, a.calib, a.threads); !st.ok()) return report(st);
  }

  ThreadPool pool(a.threads);
  std::vector<std::vector<int32_t>> windows;
  if (method_needs_calibration(o.method) && a.calib == "samples") {
    // Windows sampled from the model itself (temperature 1): measured best for GPTQ (docs/QUANTIZATION.md).
    Result<std::vector<int32_t>> t =
        sample_token_windows(m, pool, {a.calib_windows, a.calib_len, a.bos, a.calib_seed});
    if (!t.ok()) return report(t.status());
    Result<std::vector<std::vector<int32_t>>> w = calibration_windows(*t, a.calib_windows, a.calib_len);
    if (!w.ok()) return report(w.status());
    windows = std::move(*w);
    std::fprintf(stderr, "frugal: calibrating on %lld windows of %lld tokens sampled from the model (bos %d)\n",
                 (long long)a.calib_windows, (long long)a.calib_len, (int)a.bos);
  } else if (method_needs_calibration(o.method)) {
    if (a.calib.find("wikitext") != std::string::npos)
      return report(InvalidArgument("refusing to calibrate on " + a.calib + ": wikitext is the evaluation text"));
    std::ifstream f(a.calib, std::ios::binary);
    if (!f) return report(NotFound("cannot read calibration text " + a.calib));
    const std::string text((std::istreambuf_iterator<char>(f)), {});
    if (!m.tokenizer) return report(InvalidArgument(m.path + " carries no tokenizer"));
    // Tokenize only as much text as the windows need (generously: 8 bytes per token).
    const size_t want = (size_t)(a.calib_windows * a.calib_len * 8);
    const std::vector<int32_t> tokens = m.tokenizer->encode(text.substr(0, std::min(text.size(), want)), false, false);
    Result<std::vector<std::vector<int32_t>>> w = calibration_windows(tokens, a.calib_windows, a.calib_len);
    if (!w.ok()) return report(InvalidArgument(a.calib + ": " + w.status().message()));
    windows = std::move(*w);
    std::fprintf(stderr, "frugal: calibrating on %lld windows of %lld tokens from %s\n", (long long)a.calib_windows,
                 (long long)a.calib_len, a.calib.c_str());
  }
  auto progress = [](const LayerProgress& p) {
    const int width = 30, done = p.layer * width / p.n_layers;
    std::fprintf(stderr, "\r[%s%s] layer %d/%d  elapsed %.0f s  eta %.0f s   ", std::string(done, '#').c_str(),
                 std::string(width - done, '.').c_str(), p.layer, p.n_layers, p.elapsed_s, p.eta_s);
    if (p.layer == p.n_layers) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
  Result<ModelQuantResult> r = quantize_model(m, o, windows, pool, progress);
  if (!r.ok()) return report(r.status());
  for (const std::string& n : r->notes) std::fprintf(stderr, "  %s\n", n.c_str());
  if (dir_out) {
    HfExportOptions e;
    e.f32_unquantized = a.dir_f32;
    Result<HfExportReport> hr = write_quantized_hf_dir(m, *r, o, e, a.out);
    if (!hr.ok()) return report(hr.status());
    std::printf("wrote %s (%s): %s; %d linears packed, %d as plain %s\n", a.out.c_str(),
                human_bytes((double)hr->bytes).c_str(), describe(hr->config).c_str(), hr->packed_linears,
                hr->float_linears, a.dir_f32 ? "F32" : "F16");
    for (const std::string& n : hr->notes) std::printf("  note: %s\n", n.c_str());
    return 0;
  }
  Result<GgufExportReport> rep = write_quantized_gguf(*file, *r, o, a.out);
  if (!rep.ok()) return report(rep.status());
  std::printf("wrote %s (%s): %d linears as %s, %d as dequantized F32 (fake quant)%s\n", a.out.c_str(),
              human_bytes((double)rep->file_bytes).c_str(), rep->ggml_tensors,
              rep->native_type.empty() ? "-" : rep->native_type.c_str(), rep->fake_tensors,
              rep->f16_tensors ? fmt::format(", {} kept as F16", rep->f16_tensors).c_str() : "");
  const ModelBytes mb = model_bytes(m, *r);
  std::printf("model bytes (quant/layouts.h): %llu (linears %llu at %.3f bits/weight, other tensors %llu)\n",
              (unsigned long long)mb.total(), (unsigned long long)mb.linears, mb.linear_bits_per_weight(),
              (unsigned long long)mb.other);
  return 0;
}

}  // namespace

CLI::App* add_quantize_subcommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* sub = app.add_subcommand("quantize", "Quantize a model's weights (RTN, GPTQ, AWQ, SmoothQuant, FP8)");
  sub->add_option("IN", o->in, "input model: GGUF (an HF directory also works for directory output)")->required();
  sub->add_option("OUT", o->out, "output .gguf file, or a directory (AutoGPTQ / AutoAWQ / compressed-tensors)")
      ->required();
  sub->add_flag("--dir-f32", o->dir_f32, "directory output: embeddings and norms in F32 (default F16)");
  sub->add_option("--method", o->method, "rtn | gptq | awq | smoothquant | fp8")->capture_default_str();
  sub->add_option("--bits", o->bits, "weight bits: 2, 3, 4, 8")->capture_default_str();
  sub->add_option("--group", o->group, "group size along the row (0: per channel, -1: per tensor)")
      ->capture_default_str();
  sub->add_flag("--sym", o->sym, "symmetric (scale only)");
  sub->add_flag("--asym", o->asym, "asymmetric (scale + zero; the default)");
  sub->add_flag("--clip", o->clip, "RTN/GPTQ: MSE clip search per group");
  sub->add_flag("--act-order", o->act_order, "GPTQ: columns by descending Hessian diagonal");
  sub->add_flag("--static-groups", o->static_groups, "GPTQ act-order: groups fixed before reordering");
  sub->add_option("--damp", o->damp, "GPTQ dampening (fraction of mean diag H)")->capture_default_str();
  sub->add_option("--alpha", o->alpha, "SmoothQuant migration strength")->capture_default_str();
  sub->add_option("--fp8", o->fp8, "FP8 format: e4m3 | e5m2")->capture_default_str();
  sub->add_flag("--fp8-per-channel", o->fp8_channel, "FP8: one scale per output channel");
  sub->add_option("--calib", o->calib,
                  "calibration text (never the evaluation text), or 'samples': windows sampled from the model "
                  "itself at temperature 1 (what measured best for GPTQ)")
      ->capture_default_str();
  sub->add_option("--bos", o->bos, "--calib samples: first token of each window")->capture_default_str();
  sub->add_option("--calib-seed", o->calib_seed, "--calib samples: sampling seed")->capture_default_str();
  sub->add_option("--calib-windows", o->calib_windows, "calibration windows")->capture_default_str();
  sub->add_option("--calib-len", o->calib_len, "tokens per calibration window")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  add_mixed_precision_flags(sub, o->mixed);
  sub->callback([o, &exit_code] { exit_code = run_quantize(*o); });
  return sub;
}

}  // namespace frugal::cli
