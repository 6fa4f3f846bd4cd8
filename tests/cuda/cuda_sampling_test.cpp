// The device sampler (backend/cuda/sampling.cuh) against the CPU Sampler's rule
// (Sampler::sample_with_uniform) and its float64 reference (tests/unit/sampler_reference.h):
//   - for every kept candidate (first 48 and last 16 when more), the uniform in the middle of
//     its cumulative interval draws exactly it, on awkward vocab sizes (1 .. 50001), with
//     temperature, top-k, top-p, min-p and their combinations; random uniforms give the CPU
//     Sampler's token (those within 1e-9 of a boundary skipped);
//   - ties (cut by top-k through equal logits: lowest ids first), -inf and NaN logits, greedy;
//   - distribution over 40000 draws with the seeded uniform stream on a 37-token vocabulary:
//     chi-square within a far-tail bound, nothing outside the kept set;
//   - the repetition penalty kernel: bit-identical to the CPU rule on a 1003-wide row (positive,
//     negative and zero logits, ids out of range skipped), and penalty + greedy draw = the CPU
//     Sampler's token for the same history;
//   - bad parameters are InvalidArgument. Timing of one 49152-wide row printed (not asserted).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../unit/sampler_reference.h"
#include "backend/cuda/check.cuh"
#include "backend/cuda/model_ops.cuh"
#include "backend/cuda/sampling.cuh"
#include "cuda_test_util.h"
#include "sampling/sampler.h"

namespace frugal::cuda {
namespace {

using frugal::test::SamplerCase;

SampleParams device_params(const SamplerCase& c) {
  SampleParams p;
  p.temperature = c.temperature;
  p.top_k = c.top_k;
  p.top_p = c.top_p;
  p.min_p = c.min_p;
  return p;
}

// Rows of logits (all `rows` the same vector or one per row), a uniform each -> device ids.
Result<std::vector<int32_t>> draw(const std::vector<float>& logits_rows, int64_t n,
                                  const SampleParams& p, const std::vector<double>& u) {
  const int64_t rows = (int64_t)u.size();
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer dl, test::to_device(logits_rows));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer du, test::to_device(u));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer dout, test::poisoned((size_t)rows * 4));
  FRUGAL_RETURN_IF_ERROR(
      sample_rows(dl.as<float>(), rows, n, p, du.as<double>(), dout.as<int32_t>()));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return test::to_host<int32_t>(dout, (size_t)rows);
}

std::vector<float> repeat_rows(const std::vector<float>& row, size_t rows) {
  std::vector<float> all;
  all.reserve(row.size() * rows);
  for (size_t r = 0; r < rows; ++r) all.insert(all.end(), row.begin(), row.end());
  return all;
}

// Checks the midpoints of the kept candidates and random uniforms against the CPU Sampler.
void check_case(const std::vector<float>& logits, const SamplerCase& c, uint64_t seed) {
  const int64_t n = (int64_t)logits.size();
  SCOPED_TRACE(testing::Message() << "n " << n << " T " << c.temperature << " top_k " << c.top_k
                                  << " top_p " << c.top_p << " min_p " << c.min_p);
  const frugal::test::ReferenceDraw ref = frugal::test::reference_draw(logits, c);
  ASSERT_GT(ref.top_p_margin, 1e-9) << "case too close to the top-p boundary";
  std::vector<double> u;
  std::vector<int32_t> want;
  for (size_t i = 0; i < ref.ids.size(); ++i) {
    if (i >= 48 && i + 16 < ref.ids.size()) continue;
    u.push_back(ref.mid_u[i]);
    want.push_back(ref.ids[i]);
  }
  // Random uniforms: the CPU Sampler's token, unless u is within 1e-9 of a boundary.
  SamplerParams sp;
  sp.temperature = c.temperature;
  sp.top_k = c.top_k;
  sp.top_p = c.top_p;
  sp.min_p = c.min_p;
  Sampler cpu(sp);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  for (int i = 0; i < 32; ++i) {
    const double x = ud(rng);
    double cum = 0;
    bool near = false;
    for (double p : ref.probs) {
      cum += p;
      near = near || std::fabs(cum - x) < 1e-9;
    }
    if (near) continue;
    std::vector<float> l = logits;
    u.push_back(x);
    want.push_back(cpu.sample_with_uniform(l, {}, x));
  }
  ASSIGN_OK(got, draw(repeat_rows(logits, u.size()), n, device_params(c), u));
  int bad = 0;
  for (size_t i = 0; i < u.size(); ++i)
    if (got[i] != want[i] && ++bad <= 5)
      ADD_FAILURE() << "row " << i << " u " << u[i] << ": device " << got[i] << ", CPU "
                    << want[i];
  EXPECT_EQ(bad, 0);
}

TEST(CudaSampling, RepetitionPenaltyMatchesCpuSampler) {
  FRUGAL_REQUIRE_GPU();
  const int64_t n = 1003;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> logits((size_t)n);
  for (auto& l : logits) l = nd(rng);
  logits[3] = 0.0f;
  // a history with repeats (as the generate loop passes it) and its distinct ids
  std::uniform_int_distribution<int32_t> id(0, 60);
  std::vector<int32_t> history(150);
  for (auto& t : history) t = id(rng);
  history.push_back(3);
  std::vector<int32_t> ids = history;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const float penalty = 1.7f;
  std::vector<int32_t> ids_dev = ids;
  ids_dev.push_back(-1);  // out of range: skipped
  ids_dev.push_back((int32_t)n);
  ASSIGN_OK(dl, test::to_device(logits));
  ASSIGN_OK(di, test::to_device(ids_dev));
  FRUGAL_ASSERT_OK(apply_repetition_penalty(dl.as<float>(), n, di.as<int32_t>(),
                                            (int)ids_dev.size(), penalty));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got((size_t)n);
  FRUGAL_ASSERT_OK(dl.download(got.data(), (size_t)n * 4));
  std::vector<float> want = logits;
  for (int32_t t : ids) want[(size_t)t] = want[(size_t)t] > 0 ? want[(size_t)t] / penalty
                                                               : want[(size_t)t] * penalty;
  int changed = 0;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(got[(size_t)i], want[(size_t)i]) << i;  // bit-identical: one IEEE op each
    changed += got[(size_t)i] != logits[(size_t)i];
  }
  EXPECT_GT(changed, 40);  // the penalty did act (every nonzero logit among the ids)
  // penalty + greedy draw on the device = the CPU Sampler's token for this history
  SamplerParams sp;
  sp.repeat_penalty = penalty;
  sp.repeat_last_n = 1000;
  Sampler cpu(sp);
  std::vector<float> l = logits;
  const int32_t want_tok = cpu.sample_with_uniform(l, history, 0.0);
  SampleParams greedy;
  ASSIGN_OK(tok, draw(got, n, greedy, {0.0}));
  EXPECT_EQ(tok[0], want_tok);
  // bad input
  EXPECT_FALSE(apply_repetition_penalty(dl.as<float>(), n, di.as<int32_t>(), 1, 0.0f).ok());
  EXPECT_FALSE(apply_repetition_penalty(nullptr, n, nullptr, 1, 1.5f).ok());
}

TEST(CudaSampling, SameTokenAsCpuSamplerForTheSameUniform) {
  FRUGAL_REQUIRE_GPU();
  const SamplerCase cases[] = {{1.0f, 0, 1.0f, 0.0f},   {0.7f, 13, 1.0f, 0.0f},
                               {1.3f, 0, 0.83f, 0.0f},  {1.0f, 0, 1.0f, 0.07f},
                               {0.8f, 40, 0.95f, 0.05f}, {2.5f, 1, 1.0f, 0.0f},
                               {0.6f, 300, 0.6f, 0.0f}};
  for (int n : {1, 7, 61, 1003, 50001})
    for (const SamplerCase& c : cases) check_case(frugal::test::distinct_logits(n, 100 + n), c, n);
}

TEST(CudaSampling, TiesInfAndNanFollowTheCpuOrder) {
  FRUGAL_REQUIRE_GPU();
  // Logits from a few values only: top-k cuts through runs of equal logits (lowest ids kept).
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> pick(0, 3);
  std::vector<float> tied(203);
  for (float& x : tied) x = 0.5f * (float)pick(rng);
  for (const SamplerCase& c : {SamplerCase{1.0f, 7, 1.0f, 0.0f}, SamplerCase{0.9f, 60, 1.0f, 0.0f},
                               SamplerCase{1.0f, 0, 1.0f, 0.0f}})
    check_case(tied, c, 9);

  // -inf never drawn; NaN never a candidate.
  std::vector<float> l = frugal::test::distinct_logits(97, 4);
  for (int i = 0; i < 97; i += 3) l[i] = -INFINITY;
  l[5] = NAN;
  std::vector<double> u;
  for (int i = 0; i < 200; ++i) u.push_back((i + 0.5) / 200);
  ASSIGN_OK(got, draw(repeat_rows(l, u.size()), 97, device_params({1.0f, 0, 1.0f, 0.0f}), u));
  for (int32_t t : got) {
    ASSERT_TRUE(t >= 0 && t < 97);
    EXPECT_FALSE(std::isinf(l[t]) || std::isnan(l[t])) << t;
  }

  // Greedy: the lowest id among equal maxima; NaN ignored; an all-NaN row gives 0.
  std::vector<float> g = {NAN, 1.0f, 3.0f, -2.0f, 3.0f, NAN};
  std::vector<float> nan_row(6, NAN);
  std::vector<float> both = g;
  both.insert(both.end(), nan_row.begin(), nan_row.end());
  ASSIGN_OK(gr, draw(both, 6, device_params({0.0f, 0, 1.0f, 0.0f}), {0.3, 0.3}));
  EXPECT_EQ(gr[0], 2);
  EXPECT_EQ(gr[1], 0);
}

TEST(CudaSampling, DistributionOverManyDrawsMatchesReference) {
  FRUGAL_REQUIRE_GPU();
  const int n = 37, draws = 40000;
  const std::vector<float> logits = frugal::test::distinct_logits(n, 21, 1.5f);
  const SamplerCase c{0.9f, 20, 0.9f, 0.0f};
  const frugal::test::ReferenceDraw ref = frugal::test::reference_draw(logits, c);
  SamplerParams sp;
  sp.seed = 2026;
  Sampler stream(sp);  // the CPU Sampler's uniform stream for this seed
  std::vector<double> u((size_t)draws);
  for (double& x : u) x = stream.next_uniform();
  ASSIGN_OK(got, draw(repeat_rows(logits, (size_t)draws), n, device_params(c), u));
  std::vector<double> count((size_t)n, 0.0);
  for (int32_t t : got) {
    ASSERT_TRUE(t >= 0 && t < n) << t;
    count[(size_t)t] += 1;
  }
  std::vector<double> expect((size_t)n, 0.0);
  for (size_t i = 0; i < ref.ids.size(); ++i) expect[(size_t)ref.ids[i]] = ref.probs[i] * draws;
  double chi2 = 0;
  int dof = -1;
  for (int i = 0; i < n; ++i) {
    if (expect[(size_t)i] == 0) {
      EXPECT_EQ(count[(size_t)i], 0) << "token " << i << " is outside the kept set";
      continue;
    }
    chi2 += (count[(size_t)i] - expect[(size_t)i]) * (count[(size_t)i] - expect[(size_t)i]) /
            expect[(size_t)i];
    ++dof;
  }
  // Far tail: mean dof, sd sqrt(2 dof); 6 sd is p << 1e-6 for these dof.
  const double bound = dof + 6 * std::sqrt(2.0 * dof);
  std::printf("[ info ] %d draws over %d kept tokens: chi2 %.1f (dof %d, bound %.1f)\n", draws,
              dof + 1, chi2, dof, bound);
  EXPECT_LT(chi2, bound);
}

TEST(CudaSampling, BadParametersAreErrors) {
  FRUGAL_REQUIRE_GPU();
  ASSIGN_OK(dl, test::to_device(std::vector<float>(10, 0.f)));
  ASSIGN_OK(du, test::to_device(std::vector<double>(1, 0.5)));
  ASSIGN_OK(dout, DeviceBuffer::allocate(4));
  auto run = [&](SampleParams p, int64_t n) {
    return sample_rows(dl.as<float>(), 1, n, p, du.as<double>(), dout.as<int32_t>()).code();
  };
  SampleParams p;
  p.temperature = 1.0f;
  EXPECT_EQ(run(p, 0), StatusCode::kInvalidArgument);
  p.top_p = 0.0f;
  EXPECT_EQ(run(p, 10), StatusCode::kInvalidArgument);
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  EXPECT_EQ(run(p, 10), StatusCode::kInvalidArgument);
  p.min_p = 0.0f;
  p.temperature = NAN;
  EXPECT_EQ(run(p, 10), StatusCode::kInvalidArgument);
  p.temperature = 1.0f;
  EXPECT_EQ(sample_rows(dl.as<float>(), 1, 10, p, nullptr, dout.as<int32_t>()).code(),
            StatusCode::kInvalidArgument);
}

// Information only: one row of a 49152-token vocabulary (SmolLM2's), against argmax_rows.
TEST(CudaSampling, TimingOfOneRow) {
  FRUGAL_REQUIRE_GPU();
  const int64_t n = 49152;
  ASSIGN_OK(dl, test::to_device(frugal::test::distinct_logits((int)n, 8, 3.0f)));
  ASSIGN_OK(du, test::to_device(std::vector<double>(1, 0.37)));
  ASSIGN_OK(dout, DeviceBuffer::allocate(4));
  cudaEvent_t a, b;
  ASSERT_EQ(cudaEventCreate(&a), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&b), cudaSuccess);
  auto time_us = [&](auto&& launch) {
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(launch().ok());
    (void)cudaEventRecord(a);
    const int reps = 50;
    for (int i = 0; i < reps; ++i) EXPECT_TRUE(launch().ok());
    (void)cudaEventRecord(b);
    (void)cudaEventSynchronize(b);
    float ms = 0;
    (void)cudaEventElapsedTime(&ms, a, b);
    return 1000.0 * ms / reps;
  };
  const double argmax_us =
      time_us([&] { return argmax_rows(dl.as<float>(), 1, n, dout.as<int32_t>()); });
  std::printf("[ info ] vocab %lld, one row: argmax_rows %.1f us", (long long)n, argmax_us);
  for (const SamplerCase& c : {SamplerCase{0.8f, 40, 0.95f, 0.05f}, SamplerCase{0.8f, 0, 0.95f, 0.0f},
                               SamplerCase{1.0f, 0, 1.0f, 0.0f}}) {
    const SampleParams p = device_params(c);
    const double us = time_us(
        [&] { return sample_rows(dl.as<float>(), 1, n, p, du.as<double>(), dout.as<int32_t>()); });
    std::printf(", T %.1f top_k %d top_p %.2f min_p %.2f: %.1f us", c.temperature, c.top_k,
                c.top_p, c.min_p, us);
  }
  std::printf("\n");
  (void)cudaEventDestroy(a);
  (void)cudaEventDestroy(b);
}

}  // namespace
}  // namespace frugal::cuda
