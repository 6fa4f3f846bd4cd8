// The hardware table is exactly REFERENCES.md's dense figures; custom hardware; the host probe.
#include <gtest/gtest.h>

#include "planner/hardware.h"
#include "planner/host_probe.h"

namespace frugal::planner {
namespace {

TEST(PlannerHardware, TableMatchesReferences) {
  // name, memory GB, bandwidth GB/s, BF16 TFLOPS, FP8 TFLOPS (0: none), INT8 TOPS.
  const struct { const char* name; double mem, bw, bf16, fp8, int8; } kRef[] = {
      {"a100-40gb", 40, 1555, 312, 0, 624},     {"a100-80gb", 80, 2039, 312, 0, 624},
      {"h100-sxm", 80, 3350, 989, 1979, 1979},  {"h100-pcie", 80, 2039, 756, 1513, 1513},
      {"h200", 141, 4800, 989, 1979, 1979},     {"l4", 24, 300, 121, 242, 242},
      {"l40s", 48, 864, 362, 733, 733},         {"a10g", 24, 600, 70, 0, 140},
      {"rtx-4090", 24, 1008, 165, 330, 661},    {"mi300x", 192, 5300, 1307, 2615, 2615},
  };
  ASSERT_EQ(hardware_table().size(), sizeof(kRef) / sizeof(kRef[0]));
  for (const auto& r : kRef) {
    Result<Hardware> h = find_hardware(r.name);
    ASSERT_TRUE(h.ok()) << r.name;
    EXPECT_EQ(h->memory_gb, r.mem) << r.name;
    EXPECT_EQ(h->bandwidth_gbs, r.bw) << r.name;
    EXPECT_EQ(h->bf16_tflops, r.bf16) << r.name;
    EXPECT_EQ(h->fp8_tflops, r.fp8) << r.name;
    EXPECT_EQ(h->int8_tops, r.int8) << r.name;
    EXPECT_GT(h->link_gbs, 0) << r.name;
    EXPECT_GT(h->fp32_tflops, 0) << r.name;
    EXPECT_TRUE(validate_hardware(*h).ok()) << r.name;
    EXPECT_EQ(h->memory_bytes(), (uint64_t)(r.mem * 1e9));
  }
}

TEST(PlannerHardware, PeaksByComputePath) {
  const Hardware a100 = find_hardware("a100").value();
  EXPECT_EQ(a100.peak_flops(ComputePath::kBf16), 312e12);
  EXPECT_EQ(a100.peak_flops(ComputePath::kFp8), 312e12);  // no FP8 tensor cores: BF16 path
  const Hardware h100 = find_hardware("H100").value();
  EXPECT_EQ(h100.name, "h100-sxm");
  EXPECT_EQ(h100.peak_flops(ComputePath::kFp8), 1979e12);
}

TEST(PlannerHardware, UnknownNameSuggests) {
  Result<Hardware> h = find_hardware("a1000");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("a100-40gb"), std::string::npos) << h.status().message();
  Result<Hardware> cpu = find_hardware("cpu");
  ASSERT_FALSE(cpu.ok());
  EXPECT_NE(cpu.status().message().find("--bandwidth"), std::string::npos);
}

TEST(PlannerHardware, CustomJson) {
  Result<Hardware> h = hardware_from_json_text(
      R"({"name": "my-gpu", "memory_gb": 32, "bandwidth_gbs": 900, "bf16_tflops": 200,
          "link_gbs": 50, "eff_bandwidth": 0.9})", "hw.json");
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->name, "my-gpu");
  EXPECT_EQ(h->memory_gb, 32);
  EXPECT_EQ(h->eff_bandwidth, 0.9);
  EXPECT_EQ(h->fp8_tflops, 0);
  h = hardware_from_json_text(R"([{"name": "x", "memory_gb": 1, "bandwidth_gbs": 1, "bf16_tflops": 1}])", "a");
  EXPECT_TRUE(h.ok());
  h = hardware_from_json_text(R"({"name": "x", "memory_gb": 32, "bf16_tflops": 200})", "hw.json");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("'bandwidth_gbs'"), std::string::npos) << h.status().message();
  h = hardware_from_json_text(R"({"name": "x", "memory_gb": "32", "bandwidth_gbs": 1, "bf16_tflops": 1})", "a");
  EXPECT_FALSE(h.ok());
  h = hardware_from_json_text(R"({"name": "x", "memory_gb": 0, "bandwidth_gbs": 1, "bf16_tflops": 1})", "a");
  EXPECT_FALSE(h.ok());
  h = hardware_from_json_text(R"({"name": "x", "memory_gb": 1, "bandwidth_gbs": 1, "bf16_tflops": 1,
                                  "eff_flops": 1.5})", "a");
  EXPECT_FALSE(h.ok());
  EXPECT_FALSE(hardware_from_json_text("{", "a").ok());
  EXPECT_FALSE(hardware_from_json_file("/no/such/hw.json").ok());
}

TEST(PlannerHardware, HostProbeSmallBuffer) {
  HostProbeParams p;
  p.buffer_bytes = 64u << 20;  // above a 32 MiB L3
  p.repeats = 1;
  p.threads = 2;
  Result<HostProbeResult> r = probe_host(p);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(r->read_gbs, 0.1);
  EXPECT_GT(r->copy_gbs, 0.1);
  EXPECT_GT(r->fma_tflops, 1e-4);
  EXPECT_EQ(r->threads, 2);
  EXPECT_GT(host_memory_bytes(), 0u);
  p.buffer_bytes = 1000;
  EXPECT_FALSE(probe_host(p).ok());
}

// The kept-buffer read probe (frugal bench): measures as often as asked, for any thread count
// the buffer has room for; bad sizes are errors.
TEST(HostProbe, ReadProbeKeepsItsBuffer) {
  Result<ReadProbe> rp = ReadProbe::create(16u << 20);
  ASSERT_TRUE(rp.ok()) << rp.status().message();
  EXPECT_EQ(rp->bytes(), 16u << 20);
  for (int t : {1, 2, 1}) {
    Result<double> gbs = rp->measure(t, 1);
    ASSERT_TRUE(gbs.ok()) << gbs.status().message();
    EXPECT_GT(*gbs, 0.1) << t << " thread(s)";
  }
  EXPECT_FALSE(rp->measure(0).ok());
  EXPECT_FALSE(rp->measure(8192).ok()) << "slices under 4 KiB";
  EXPECT_FALSE(ReadProbe::create(1000).ok());
}

}  // namespace
}  // namespace frugal::planner
