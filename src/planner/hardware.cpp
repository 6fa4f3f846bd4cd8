#include "planner/hardware.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "planner/presets.h"  // edit_distance

namespace frugal::planner {

namespace {

struct Entry {
  Hardware hw;
  const char* aliases;  // comma-separated
};

Hardware gpu(const char* name, const char* display, double mem, double bw, double bf16, double fp8,
             double int8, double fp32, double link_gbs, const char* link, double latency_us) {
  Hardware h;
  h.name = name;
  h.display = display;
  h.memory_gb = mem;
  h.bandwidth_gbs = bw;
  h.bf16_tflops = bf16;
  h.fp8_tflops = fp8;
  h.int8_tops = int8;
  h.fp32_tflops = fp32;
  h.link_gbs = link_gbs;
  h.link = link;
  h.link_latency_us = latency_us;
  h.source = "REFERENCES.md (memory, bandwidth, tensor peaks); vendor datasheets (link, fp32)";
  return h;
}

// Columns: memory GB, bandwidth GB/s, BF16 TFLOPS, FP8 TFLOPS, INT8 TOPS (dense; REFERENCES.md),
// fp32 vector TFLOPS, link GB/s per direction, link, all-reduce latency per ring step (us).
// NVLink figures are the datasheet totals (both directions) halved; PCIe x16: 4.0 = 32 GB/s,
// 5.0 = 64 GB/s per direction. Latency per ring step: 2 us on NVLink/Infinity Fabric, 5 us PCIe.
const std::vector<Entry>& entries() {
  static const std::vector<Entry> kEntries = {
      {gpu("a100-40gb", "NVIDIA A100 40GB SXM", 40, 1555, 312, 0, 624, 19.5, 300,
           "NVLink 3 (600 GB/s total)", 2),
       "a100,a100-40g,a100-sxm-40gb,a100-sxm4-40gb"},
      {gpu("a100-80gb", "NVIDIA A100 80GB SXM", 80, 2039, 312, 0, 624, 19.5, 300,
           "NVLink 3 (600 GB/s total)", 2),
       "a100-80g,a100-sxm-80gb,a100-sxm4-80gb"},
      {gpu("h100-sxm", "NVIDIA H100 SXM", 80, 3350, 989, 1979, 1979, 67, 450,
           "NVLink 4 (900 GB/s total)", 2),
       "h100,h100-sxm5,h100-80gb"},
      {gpu("h100-pcie", "NVIDIA H100 PCIe", 80, 2039, 756, 1513, 1513, 51, 64, "PCIe 5.0 x16", 5),
       "h100-pcie-80gb"},
      {gpu("h200", "NVIDIA H200 SXM", 141, 4800, 989, 1979, 1979, 67, 450,
           "NVLink 4 (900 GB/s total)", 2),
       "h200-sxm,h200-141gb"},
      {gpu("l4", "NVIDIA L4", 24, 300, 121, 242, 242, 30.3, 32, "PCIe 4.0 x16", 5), "l4-24gb"},
      {gpu("l40s", "NVIDIA L40S", 48, 864, 362, 733, 733, 91.6, 32, "PCIe 4.0 x16", 5),
       "l40s-48gb"},
      {gpu("a10g", "NVIDIA A10G", 24, 600, 70, 0, 140, 31.2, 32, "PCIe 4.0 x16", 5), "a10g-24gb"},
      {gpu("rtx-4090", "NVIDIA GeForce RTX 4090", 24, 1008, 165, 330, 661, 82.6, 32,
           "PCIe 4.0 x16 (no peer-to-peer)", 5),
       "4090,rtx4090,geforce-rtx-4090"},
      {gpu("mi300x", "AMD Instinct MI300X", 192, 5300, 1307, 2615, 2615, 163.4, 448,
           "Infinity Fabric (7 x 128 GB/s total)", 2),
       "mi300,amd-mi300x"},
  };
  return kEntries;
}

std::string lower(std::string_view s) {
  std::string o;
  for (char c : s) o += (char)std::tolower((unsigned char)(c == '_' || c == ' ' ? '-' : c));
  return o;
}

bool alias_match(const std::string& n, std::string_view aliases) {
  while (!aliases.empty()) {
    const size_t comma = aliases.find(',');
    if (n == aliases.substr(0, comma)) return true;
    if (comma == std::string_view::npos) break;
    aliases.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

double Hardware::peak_flops(ComputePath p) const {
  switch (p) {
    case ComputePath::kF32: return (fp32_tflops > 0 ? fp32_tflops : bf16_tflops / 2) * 1e12;
    case ComputePath::kBf16: return bf16_tflops * 1e12;
    case ComputePath::kFp8: return (fp8_tflops > 0 ? fp8_tflops : bf16_tflops) * 1e12;
  }
  return bf16_tflops * 1e12;
}

std::string Hardware::summary() const {
  std::string s = fmt::format("{:.4g} GB, {:.4g} GB/s, {:.4g} TFLOPS {}", memory_gb, bandwidth_gbs,
                              bf16_tflops, is_cpu ? "fp32" : "bf16");
  if (fp8_tflops > 0) s += fmt::format(", {:.4g} fp8", fp8_tflops);
  if (!source.empty() && (is_cpu || source == "given" || source.find("overridden") != std::string::npos))
    s += " (" + source + ")";
  return s;
}

const std::vector<Hardware>& hardware_table() {
  static const std::vector<Hardware> kTable = [] {
    std::vector<Hardware> t;
    for (const Entry& e : entries()) t.push_back(e.hw);
    return t;
  }();
  return kTable;
}

Result<Hardware> find_hardware(std::string_view name) {
  const std::string n = lower(name);
  for (const Entry& e : entries())
    if (n == e.hw.name || alias_match(n, e.aliases)) return e.hw;
  if (n == "cpu")
    return InvalidArgument("hardware 'cpu' needs a bandwidth: pass --bandwidth GB/s or --measure-host");
  std::vector<std::pair<size_t, std::string>> scored;
  for (const Entry& e : entries()) scored.push_back({edit_distance(n, e.hw.name), e.hw.name});
  std::stable_sort(scored.begin(), scored.end());
  std::string msg = "unknown hardware '" + std::string(name) + "'; closest: ";
  for (size_t i = 0; i < 3 && i < scored.size(); ++i)
    msg += (i ? ", " : "") + scored[i].second;
  msg += " (frugal plan --list-hardware shows all; 'cpu' with --bandwidth; --hw-file FILE.json)";
  return NotFound(msg);
}

Hardware cpu_hardware(double memory_gb, double bandwidth_gbs, double tflops, std::string source) {
  Hardware h;
  h.name = "cpu";
  h.display = "host CPU";
  h.is_cpu = true;
  h.memory_gb = memory_gb;
  h.bandwidth_gbs = bandwidth_gbs;
  h.bf16_tflops = tflops;  // CPU kernels compute in fp32 after dequantization
  h.fp32_tflops = tflops;
  h.link = "none";
  h.eff_bandwidth = 1.0;  // a measured read bandwidth is already what a kernel achieves
  h.eff_flops = 0.5;      // GEMM on AVX2 reaches about half the FMA peak
  h.source = std::move(source);
  return h;
}

Status validate_hardware(const Hardware& hw) {
  auto bad = [&](const std::string& m) { return InvalidArgument("hardware '" + hw.name + "': " + m); };
  if (!(hw.memory_gb > 0)) return bad("memory must be positive");
  if (!(hw.bandwidth_gbs > 0)) return bad("memory bandwidth must be positive");
  if (!(hw.bf16_tflops > 0)) return bad("compute peak (bf16_tflops) must be positive");
  if (hw.fp8_tflops < 0 || hw.int8_tops < 0 || hw.fp32_tflops < 0 || hw.link_gbs < 0)
    return bad("peaks and link bandwidth must not be negative");
  for (double e : {hw.eff_bandwidth, hw.eff_flops, hw.eff_link})
    if (!(e > 0 && e <= 1)) return bad("efficiencies must be in (0, 1]");
  return Status::Ok();
}

Result<Hardware> hardware_from_json_text(const std::string& text, const std::string& origin) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt(origin + ": not valid JSON");
  if (j.is_array()) {
    if (j.empty()) return InvalidArgument(origin + ": empty array");
    j = j[0];
  }
  if (!j.is_object()) return InvalidArgument(origin + ": expected a JSON object");
  Hardware h;
  auto num = [&](const char* key, double* out, bool required) -> Status {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required) return NotFound(origin + ": missing required field '" + key + "'");
      return Status::Ok();
    }
    if (!it->is_number()) return InvalidArgument(origin + ": field '" + key + "' must be a number");
    *out = it->get<double>();
    return Status::Ok();
  };
  auto it = j.find("name");
  if (it == j.end()) return NotFound(origin + ": missing required field 'name'");
  if (!it->is_string()) return InvalidArgument(origin + ": field 'name' must be a string");
  h.name = it->get<std::string>();
  h.display = h.name;
  FRUGAL_RETURN_IF_ERROR(num("memory_gb", &h.memory_gb, true));
  FRUGAL_RETURN_IF_ERROR(num("bandwidth_gbs", &h.bandwidth_gbs, true));
  FRUGAL_RETURN_IF_ERROR(num("bf16_tflops", &h.bf16_tflops, true));
  FRUGAL_RETURN_IF_ERROR(num("fp8_tflops", &h.fp8_tflops, false));
  FRUGAL_RETURN_IF_ERROR(num("int8_tops", &h.int8_tops, false));
  FRUGAL_RETURN_IF_ERROR(num("fp32_tflops", &h.fp32_tflops, false));
  FRUGAL_RETURN_IF_ERROR(num("link_gbs", &h.link_gbs, false));
  FRUGAL_RETURN_IF_ERROR(num("link_latency_us", &h.link_latency_us, false));
  FRUGAL_RETURN_IF_ERROR(num("eff_bandwidth", &h.eff_bandwidth, false));
  FRUGAL_RETURN_IF_ERROR(num("eff_flops", &h.eff_flops, false));
  FRUGAL_RETURN_IF_ERROR(num("eff_link", &h.eff_link, false));
  if (auto d = j.find("display"); d != j.end() && d->is_string()) h.display = d->get<std::string>();
  if (auto l = j.find("link"); l != j.end() && l->is_string()) h.link = l->get<std::string>();
  if (auto c = j.find("is_cpu"); c != j.end()) {
    if (!c->is_boolean()) return InvalidArgument(origin + ": field 'is_cpu' must be true or false");
    h.is_cpu = c->get<bool>();
  }
  h.source = origin;
  FRUGAL_RETURN_IF_ERROR(validate_hardware(h));
  return h;
}

Result<Hardware> hardware_from_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("cannot open hardware file '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return hardware_from_json_text(ss.str(), path);
}

}  // namespace frugal::planner
