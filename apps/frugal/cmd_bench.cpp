// frugal bench: prompt (pp) and decode (tg) tokens/s per weight format and thread count, with
// the decode roofline (bytes a decode step reads / read bandwidth measured in the same run).
//
//   frugal bench -m MODEL.gguf [--formats file,q8_0,q4_0] [-p 512] [-n 128] [-t 1,2] [--reps 3]
//   frugal bench --dummy llama-3.2-1b --formats q8_0,q4_0,i4_g128
//   frugal bench --device cuda --dummy llama-3.1-8b -p 512,2048 -n 128 -b 1,8,32 --ctx 1024,4096
//     (bench_cuda.cpp: bf16 weights on the GPU, decode per batch x context)
//
// Each format is built in memory (from the file's dequantized float32 rows, or as random dummy
// weights), benchmarked, and freed before the next. Table on stdout (Markdown), or --json.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_isa.h"
#include "base/huge_pages.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kv_quant.h"
#include "backend/cpu/ops.h"
#include "act_quant_flag.h"
#include "repack_flag.h"
#include "prefill_act_flag.h"
#include "bench_cuda.h"
#include "cli_util.h"
#include "commands.h"
#include "eval/bench.h"
#include "model/dummy.h"
#include "model/model.h"
#include "model/owned_weights.h"
#include "planner/host_probe.h"

namespace frugal::cli {

namespace {

struct BenchOptions {
  std::string model;
  std::string dummy;
  int dummy_layers = 0;
  std::string formats;
  std::string threads;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int reps = 3;
  uint64_t seed = 1;
  bool json = false;
  double mem_limit_gib = 24;
  int64_t bw_mib = 0;
  std::string decode_act = "q8";
  std::string prefill_act = kPrefillActDefault;
  std::string act_quant = "auto";
  PlacementFlags placement;
  std::vector<int64_t> prompts{512};  // -p: one value on cpu (n_prompt), a list on cuda
  BenchCudaFlags cuda;                // --device, -b, --ctx, --gpu-memory-utilization
  std::string cpu_isa;  // empty: as FRUGAL_CPU_ISA / the best target
};

// A requested format: a dtype, or the model file's own weights ("file", -m only).
struct Format {
  std::string name;
  std::optional<DType> dtype;  // nullopt: as loaded
};

struct Row {
  std::string format;
  size_t bytes = 0;
  double bpw = 0;
  int threads = 0;
  SpeedResult speed;
  double decode_bytes = 0;  // mean bytes read per tg step
  size_t huge_page_bytes = 0;  // AnonHugePages of the process once the weights were placed
  double read_gbs = 0;  // mean of the probes taken around this row's tg runs
  double read_gbs_before = 0, read_gbs_after = 0;  // the first and the last of them
  // Per timed tg run: tok/s over that run's own roofline (the mean of the probes just before
  // and just after it). The row's ratio is their median.
  std::vector<double> tg_ratio_runs;
  double tg_ratio = 0, tg_ratio_min = 0, tg_ratio_max = 0;
};

// Fills the row's bandwidth and ratio fields from its tg probes (or, without tg runs, from the
// probes bracketing the row).
void set_roofline(Row& r, double bw_before, double bw_after) {
  const std::vector<double>& p = r.speed.tg_probes_gbs;
  const std::vector<double>& runs = r.speed.tg.runs;
  r.read_gbs_before = p.empty() ? bw_before : p.front();
  r.read_gbs_after = p.empty() ? bw_after : p.back();
  r.tg_ratio_runs.clear();
  double sum = 0;
  for (size_t i = 0; i < runs.size() && i + 1 < p.size(); ++i) {
    const double bw = 0.5 * (p[i] + p[i + 1]);
    sum += bw;
    r.tg_ratio_runs.push_back(bw > 0 ? runs[i] * r.decode_bytes / (bw * 1e9) : 0.0);
  }
  r.read_gbs = r.tg_ratio_runs.empty() ? 0.5 * (bw_before + bw_after)
                                       : sum / (double)r.tg_ratio_runs.size();
  if (r.tg_ratio_runs.empty()) {
    const double roof = r.read_gbs * 1e9 / r.decode_bytes;
    r.tg_ratio = r.tg_ratio_min = r.tg_ratio_max = roof > 0 ? r.speed.tg.mean / roof : 0.0;
    return;
  }
  std::vector<double> s = r.tg_ratio_runs;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  r.tg_ratio = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  r.tg_ratio_min = s.front();
  r.tg_ratio_max = s.back();
}

Result<std::vector<int>> parse_threads(const std::string& s) {
  std::vector<int> out;
  if (s.empty()) {
    const int hw = (int)std::max(1u, std::thread::hardware_concurrency());
    out.push_back(1);
    if (hw > 1) out.push_back(hw);
    return out;
  }
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 1 || v > 1024)
      return InvalidArgument("-t: '" + item + "' is not a thread count (1..1024)");
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  if (out.empty()) return InvalidArgument("-t: no thread counts given");
  return out;
}

std::string supported_format_names() {
  std::string s;
  for (int i = 0; i < (int)DType::kCount; ++i)
    if (cpu::matmul_supports((DType)i)) {
      std::string n = dtype_name((DType)i);
      for (char& ch : n) ch = (char)std::tolower((unsigned char)ch);
      s += (s.empty() ? "" : ", ") + n;
    }
  return s;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = (char)std::tolower((unsigned char)ch);
  return s;
}

Result<std::vector<Format>> parse_formats(const std::string& s, bool have_file) {
  std::vector<Format> out;
  std::stringstream ss(s.empty() ? std::string(have_file ? "file" : "q8_0") : s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "file") {
      if (!have_file) return InvalidArgument("--formats: 'file' needs -m MODEL");
      out.push_back({"file", std::nullopt});
      continue;
    }
    const std::optional<DType> t = dtype_from_name(item);
    if (!t || !cpu::matmul_supports(*t))
      return InvalidArgument("--formats: unknown weight format '" + item + "' (known: file, " +
                             supported_format_names() + ")");
    out.push_back({lower(item), t});
  }
  if (out.empty()) return InvalidArgument("--formats: no formats given");
  return out;
}

// Bytes the run needs besides the weights: activations of one prefill batch, the KV cache,
// logits, and the bandwidth probe's buffer.
double overhead_bytes(const ModelConfig& c, int64_t n_prompt, int64_t n_gen, double bw_bytes) {
  const double q_dim = (double)(c.n_heads * c.head_dim());
  const double n = (double)std::max<int64_t>(n_prompt, 1);
  const double act = n * (2.0 * (double)c.dim + 2 * q_dim + 2.0 * (double)c.kv_dim() + q_dim +
                          2.0 * (double)c.hidden_dim) * 4.0;
  const double kv = (double)std::max(n_prompt, n_gen) * 2.0 * c.n_layers * (double)c.kv_dim() * 4;
  return act + kv + (double)c.vocab_size * 4.0 + bw_bytes;
}

std::string gb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  return buf;
}

// Refuses the run when a format would not fit under the memory limit, naming the bytes and
// the requested formats that do fit.
Status check_memory(const ModelConfig& c, const std::vector<Format>& formats, double file_bytes,
                    double overhead, double limit) {
  std::vector<std::string> fit, over;
  std::string first_over;
  for (const Format& f : formats) {
    if (!f.dtype) {
      (file_bytes + overhead <= limit ? fit : over).push_back(f.name);
      continue;
    }
    if (!check_dtype_fits(c, *f.dtype).ok()) continue;  // skipped later with its reason
    const double w = (double)weight_bytes_for(c, *f.dtype);
    const double need = w + file_bytes + overhead;
    if (need <= limit) {
      fit.push_back(f.name);
    } else {
      over.push_back(f.name);
      if (first_over.empty())
        first_over = f.name + " needs " + gb(need) + " (weights " + gb(w) +
                     (file_bytes > 0 ? " + source file " + gb(file_bytes) : std::string()) +
                     " + activations, KV cache and bandwidth buffer " + gb(overhead) + ")";
    }
  }
  if (over.empty()) return Status::Ok();
  if (first_over.empty()) first_over = "the model file needs " + gb(file_bytes + overhead);
  // Suggest the standard formats that fit when none of the requested ones does.
  if (fit.empty())
    for (DType t : {DType::Q8_0, DType::Q4_0, DType::I4_G128})
      if (cpu::matmul_supports(t) && check_dtype_fits(c, t).ok() &&
          (double)weight_bytes_for(c, t) + file_bytes + overhead <= limit)
        fit.push_back(lower(dtype_name(t)));
  std::string msg = first_over + ", over the memory limit of " + gb(limit) + " (--mem-limit)";
  if (!fit.empty()) {
    msg += "; formats that fit:";
    for (const std::string& f : fit) msg += " " + f;
  }
  return ResourceExhausted(msg);
}

size_t default_bw_bytes() {
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const size_t want = std::max<size_t>(size_t(1) << 30, 4 * (size_t)std::max(0L, l3));
  return std::min<size_t>(want, size_t(2) << 30);
}

void print_table(const std::vector<Row>& rows, const BenchOptions& o) {
  std::printf("| format | size | bpw | threads | pp%lld t/s | tg%lld t/s | pp/tg | read GB/s "
              "(first / last) | tg roofline t/s | tg/roofline (min–max) |\n",
              (long long)o.n_prompt, (long long)o.n_gen);
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    const double roof = r.read_gbs * 1e9 / r.decode_bytes;
    std::printf("| %s | %s | %.2f | %d | %.1f ± %.1f | %.2f ± %.2f | %.1f | %.1f (%.1f / %.1f) | "
                "%.1f | %.2f (%.2f–%.2f) |\n",
                r.format.c_str(), human_bytes((double)r.bytes).c_str(), r.bpw, r.threads,
                r.speed.pp.mean, r.speed.pp.sd, r.speed.tg.mean, r.speed.tg.sd,
                r.speed.tg.mean > 0 ? r.speed.pp.mean / r.speed.tg.mean : 0.0, r.read_gbs,
                r.read_gbs_before, r.read_gbs_after, roof, r.tg_ratio, r.tg_ratio_min,
                r.tg_ratio_max);
  }
}

nlohmann::ordered_json rate_json(const Rate& r) {
  return {{"mean", r.mean}, {"sd", r.sd}, {"runs", r.runs}};
}

int run_bench(const BenchOptions& o) {
  if (o.model.empty() == o.dummy.empty())
    return report(InvalidArgument("give exactly one of -m MODEL and --dummy ARCH"));
  if (o.n_prompt < 0 || o.n_gen < 0 || o.n_prompt + o.n_gen == 0)
    return report(InvalidArgument("-p and -n must be >= 0 and not both 0"));
  if (o.reps < 1) return report(InvalidArgument("--reps must be at least 1"));
  if (o.dummy_layers < 0) return report(InvalidArgument("--dummy-layers must be >= 0"));
  if (o.dummy_layers > 0 && o.dummy.empty())
    return report(InvalidArgument("--dummy-layers applies to --dummy only"));
  if (o.bw_mib < 0) return report(InvalidArgument("--bw-mib must be >= 0"));
  if (!(o.mem_limit_gib > 0)) return report(InvalidArgument("--mem-limit must be positive"));
  Result<std::vector<int>> threads = parse_threads(o.threads);
  if (!threads.ok()) return report(threads.status());
  Result<std::vector<Format>> formats = parse_formats(o.formats, !o.model.empty());
  if (!formats.ok()) return report(formats.status());
  if (!o.cpu_isa.empty()) {
    Result<cpu::CpuIsa> isa = cpu::parse_cpu_isa(o.cpu_isa);
    if (!isa.ok()) return report(isa.status());
    if (Status st = cpu::set_cpu_isa(*isa); !st.ok()) return report(st);
  }

  // The architecture (and the file's weights when -m).
  std::optional<Model> file;
  ModelConfig cfg;
  if (!o.model.empty()) {
    Result<Model> loaded = load_model(o.model);
    if (!loaded.ok()) return report(loaded.status());
    apply_act_quant(o.act_quant, *loaded);
    file = std::move(*loaded);
    cfg = file->config;
  } else {
    Result<ModelConfig> c = dummy_config(o.dummy);
    if (!c.ok()) return report(c.status());
    cfg = *c;
    if (o.dummy_layers > 0) cfg.n_layers = o.dummy_layers;
  }
  if (o.n_prompt > cfg.max_seq_len || o.n_gen > cfg.max_seq_len)
    return report(OutOfRange("-p/-n exceed the model's context of " +
                             std::to_string(cfg.max_seq_len)));

  const size_t bw_bytes = o.bw_mib > 0 ? (size_t)o.bw_mib << 20 : default_bw_bytes();
  const double file_bytes = file ? (double)file->weight_bytes() : 0.0;
  const double mem_total = (double)planner::host_memory_bytes();
  double limit = o.mem_limit_gib * (double)(1ull << 30);
  if (mem_total > 0) limit = std::min(limit, mem_total);
  if (Status st = check_memory(cfg, *formats, file_bytes,
                               overhead_bytes(cfg, o.n_prompt, o.n_gen, (double)bw_bytes), limit);
      !st.ok())
    return report(st);

  // Read bandwidth over a buffer much larger than the LLC, on huge pages, kept for the whole run:
  // once per thread count up front, then just before and after every tg run (each run's
  // roofline uses the mean of its own two probes; see set_roofline).
  Result<planner::ReadProbe> read_probe = planner::ReadProbe::create(bw_bytes);
  if (!read_probe.ok()) return report(read_probe.status());
  auto probe = [&](int t) -> Result<double> { return read_probe->measure(t); };
  std::vector<double> read_gbs;
  for (int t : *threads) {
    std::fprintf(stderr, "frugal bench: read bandwidth, %d thread(s), %zu MiB buffer...\n", t,
                 bw_bytes >> 20);
    Result<double> bw = probe(t);
    if (!bw.ok()) return report(bw.status());
    read_gbs.push_back(*bw);
  }

  const double kv_elem = (double)cpu::kv_row_bytes(cpu::KvDType::kF32, (int)cfg.head_dim()) /
                         (double)cfg.head_dim();
  std::vector<Row> rows;
  nlohmann::ordered_json skipped = nlohmann::ordered_json::array();
  for (const Format& f : *formats) {
    if (f.dtype) {
      if (Status st = check_dtype_fits(cfg, *f.dtype); !st.ok()) {
        std::fprintf(stderr, "frugal bench: skipping %s: %s\n", f.name.c_str(),
                     st.message().c_str());
        skipped.push_back({{"format", f.name}, {"reason", st.message()}});
        continue;
      }
    }
    std::fprintf(stderr, "frugal bench: building %s weights...\n", f.name.c_str());
    std::optional<Model> built;
    Model* m = nullptr;
    {
      ThreadPool build_pool(0);
      if (!f.dtype) {
        m = &*file;
      } else if (file) {
        Result<Model> r = requantize_model(*file, *f.dtype, build_pool);
        if (!r.ok()) return report(r.status());
        built = std::move(*r);
        m = &*built;
      } else {
        DummyModelParams dp;
        dp.dtype = *f.dtype;
        dp.seed = o.seed;
        Result<Model> r = make_dummy_model(cfg, dp, build_pool);
        if (!r.ok()) return report(r.status());
        built = std::move(*r);
        m = &*built;
      }
    }
    // The CPU decode tiles (a repacked file model still requantizes: its readers are tile-aware).
    Result<RepackReport> placed = place_weights(o.placement, *m);
    if (!placed.ok()) return report(placed.status());
    const size_t huge_resident = huge_pages_resident();
    if (placed->arena_bytes > 0)
      std::fprintf(stderr, "frugal bench: %s weights: %s arena%s; %s of this process on huge "
                   "pages (THP %s)\n", f.name.c_str(), human_bytes((double)placed->arena_bytes).c_str(),
                   placed->huge_pages ? " advised MADV_HUGEPAGE" : "",
                   human_bytes((double)huge_resident).c_str(), transparent_huge_pages_mode().c_str());
    for (size_t ti = 0; ti < threads->size(); ++ti) {
      const int t = (*threads)[ti];
      ThreadPool pool(t);
      SpeedParams sp;
      sp.n_prompt = o.n_prompt;
      sp.n_gen = o.n_gen;
      sp.reps = o.reps;
      sp.seed = o.seed;
      sp.decode_act = o.decode_act == "q8" ? cpu::ActPrecision::kQ8 : cpu::ActPrecision::kF32;
      sp.prefill_act = prefill_act(o.prefill_act);
      sp.progress = [&](const char* what, int rep) {
        std::fprintf(stderr, "frugal bench: %s, %d thread(s): %s %s\n", f.name.c_str(), t, what,
                     rep == 0 ? "warm-up" : ("run " + std::to_string(rep) + "/" +
                                             std::to_string(o.reps)).c_str());
      };
      // With tg runs, the probes go around each of them; a pp-only row is bracketed whole.
      double bw_before = 0, bw_after = 0;
      if (o.n_gen > 0) {
        sp.tg_probe = [&probe, t] { return probe(t); };
      } else {
        Result<double> bw = probe(t);
        if (!bw.ok()) return report(bw.status());
        bw_before = *bw;
      }
      Result<SpeedResult> r = measure_speed(*m, pool, sp);
      if (!r.ok()) return report(r.status());
      if (o.n_gen == 0) {
        Result<double> bw = probe(t);
        if (!bw.ok()) return report(bw.status());
        bw_after = *bw;
      }
      Row row;
      row.format = f.dtype ? f.name
                           : "file (" + lower(dtype_name(m->weights.layers[0].wq.dtype)) + ")";
      row.bytes = m->weight_bytes();
      row.bpw = 8.0 * (double)row.bytes / (double)matrix_params(m->config);
      row.threads = t;
      row.speed = *r;
      row.decode_bytes = mean_decode_bytes(*m, o.n_gen, kv_elem);
      row.huge_page_bytes = huge_resident;
      set_roofline(row, bw_before, bw_after);
      rows.push_back(std::move(row));
    }
  }

  const std::string what = file ? file->path : "dummy " + cfg.name;
  if (o.json) {
    nlohmann::ordered_json j;
    j["model"] = what;
    j["kernel"] = cpu::gemm::target_name();
    j["matvec_kernel"] = cpu::matvec_kernel_target();
    j["cpu_isa"] = cpu::cpu_isa_name(cpu::cpu_isa());
    j["decode_act"] = o.decode_act;
    j["repack"] = !o.placement.no_repack;
    j["huge_pages"] = !o.placement.no_huge_pages;
    j["thp_mode"] = transparent_huge_pages_mode();
    j["prefill_act"] = o.prefill_act;
    j["w8a8_token_act"] = file && file->int8_token_activations;
    j["n_prompt"] = o.n_prompt;
    j["n_gen"] = o.n_gen;
    j["reps"] = o.reps;
    j["bandwidth_buffer_bytes"] = bw_bytes;
    nlohmann::ordered_json bw = nlohmann::ordered_json::array();
    for (size_t i = 0; i < threads->size(); ++i)
      bw.push_back({{"threads", (*threads)[i]}, {"read_gbs", read_gbs[i]}});
    j["bandwidth"] = bw;
    nlohmann::ordered_json rs = nlohmann::ordered_json::array();
    for (const Row& r : rows) {
      const double roof = r.read_gbs * 1e9 / r.decode_bytes;
      rs.push_back({{"format", r.format},
                    {"bytes", r.bytes},
                    {"bpw", r.bpw},
                    {"threads", r.threads},
                    {"pp_tok_s", rate_json(r.speed.pp)},
                    {"tg_tok_s", rate_json(r.speed.tg)},
                    {"decode_bytes_per_token", r.decode_bytes},
                    {"read_gbs", r.read_gbs},
                    {"read_gbs_before", r.read_gbs_before},
                    {"read_gbs_after", r.read_gbs_after},
                    {"tg_probes_gbs", r.speed.tg_probes_gbs},
                    {"huge_page_bytes", r.huge_page_bytes},
                    {"tg_roofline_tok_s", roof},
                    {"tg_over_roofline", r.tg_ratio},
                    {"tg_over_roofline_runs", r.tg_ratio_runs}});
    }
    j["rows"] = rs;
    j["skipped"] = skipped;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("frugal bench: %s, %d layers, dim %lld; GEMM kernel %s, matvec kernel %s (CPU ISA "
              "cap %s); decode activations %s, prefill activations %s; %s (THP %s); KV "
              "f32; pp = one batch of %lld tokens, tg = %lld steps from an empty cache; mean ± sd "
              "of %d runs%s\n",
              what.c_str(), cfg.n_layers, (long long)cfg.dim, cpu::gemm::target_name(),
              cpu::matvec_kernel_target(), cpu::cpu_isa_name(cpu::cpu_isa()),
              o.decode_act.c_str(), o.prefill_act.c_str(),
              placement_summary(o.placement).c_str(), transparent_huge_pages_mode().c_str(),
              (long long)o.n_prompt, (long long)o.n_gen, o.reps,
              file && file->int8_token_activations ? "; I8_ROW linears W8A8 (int8 per-token activations)" : "");
  std::printf("roofline = read bandwidth (%zu MiB buffer, probed just before and after every tg "
              "run) / bytes per decode step (weights + KV); tg/roofline = the median over the "
              "runs of each run's tok/s over its own roofline\n\n", bw_bytes >> 20);
  print_table(rows, o);
  return 0;
}

}  // namespace

CLI::App* add_bench_subcommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Prompt and decode tokens/s per weight format, with the decode roofline");
  sub->add_option("-m,--model", o->model, "model file (.gguf, llama2.c .bin) or HF directory");
  sub->add_option("--dummy", o->dummy,
                  "random weights of a preset architecture instead of a file (llama-3.2-1b, "
                  "llama-3.1-8b, smollm2-135m, tiny, ...)");
  sub->add_option("--dummy-layers", o->dummy_layers, "override the dummy's layer count (0: as "
                                                     "the preset)")
      ->capture_default_str();
  sub->add_option("--formats", o->formats,
                  "comma-separated weight formats: file (as loaded), f32, f16, bf16, q8_0, q4_0, "
                  "q4_1, i8_row, e4m3_row, e5m2_row, i4_g64, i4_g128, ... (default: file with -m, "
                  "q8_0 with --dummy)");
  sub->add_option("-p,--n-prompt", o->prompts,
                  "prompt tokens (pp); --device cuda: a comma-separated list")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-n,--n-gen", o->n_gen, "decode steps (tg)")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "comma-separated thread counts (default: 1,all)");
  sub->add_option("--reps", o->reps, "timed runs of each measurement")->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of the token ids and dummy weights")
      ->capture_default_str();
  sub->add_option("--mem-limit", o->mem_limit_gib, "GiB the run may use (also capped at RAM)")
      ->capture_default_str();
  sub->add_option("--bw-mib", o->bw_mib,
                  "bandwidth probe buffer in MiB (0: max(1 GiB, 4 x L3), at most 2 GiB)")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "JSON on stdout instead of the table");
  sub->add_option("--decode-act", o->decode_act,
                  "tg matvec activations: f32 (exact) or q8 (int8 blocks, integer dot products)")
      ->check(CLI::IsMember({"f32", "q8"}))
      ->capture_default_str();
  add_prefill_act_option(sub, &o->prefill_act);
  add_act_quant_option(sub, &o->act_quant);
  add_placement_flags(sub, &o->placement);
  sub->add_option("--cpu-isa", o->cpu_isa,
                  "cap the SIMD target of the CPU kernels: auto, avx512vnni, avx512, avx2, scalar "
                  "(default: $FRUGAL_CPU_ISA, else auto = the best this CPU has)");
  add_bench_cuda_flags(sub, o->cuda);
  sub->callback([o, sub, &exit_code] {
    const bool cuda = o->cuda.device.cuda();
    if (Status st = check_bench_flag_mix(*sub, cuda, o->prompts.size()); !st.ok()) {
      exit_code = report(st);
    } else if (cuda) {
      exit_code = run_bench_cuda({o->model, o->dummy, o->dummy_layers, o->prompts, o->n_gen,
                                  o->reps, o->seed, o->json},
                                 o->cuda);
    } else if (o->cuda.device.device != "cpu") {
      exit_code = report(check_device_flags(o->cuda.device, KvFlags{}));
    } else {
      o->n_prompt = o->prompts[0];
      exit_code = run_bench(*o);
    }
  });
  return sub;
}

}  // namespace frugal::cli
