// Sampler::sample_with_uniform: the draw as an explicit function of u (what the device sampler
// reproduces), against the float64 reference of sampler_reference.h on awkward vocab sizes.
#include <gtest/gtest.h>

#include <vector>

#include "sampler_reference.h"
#include "sampling/sampler.h"

namespace frugal {
namespace {

using test::SamplerCase;

SamplerParams params_of(const SamplerCase& c) {
  SamplerParams p;
  p.temperature = c.temperature;
  p.top_k = c.top_k;
  p.top_p = c.top_p;
  p.min_p = c.min_p;
  p.repeat_penalty = 1.0f;
  return p;
}

TEST(SamplerUniform, MidpointOfEachCandidateDrawsIt) {
  const SamplerCase cases[] = {{1.0f, 0, 1.0f, 0.0f},  {0.7f, 13, 1.0f, 0.0f},
                               {1.3f, 0, 0.83f, 0.0f}, {1.0f, 0, 1.0f, 0.07f},
                               {0.8f, 40, 0.95f, 0.05f}, {2.5f, 1, 1.0f, 0.0f}};
  for (int n : {1, 7, 61, 1003}) {
    for (const SamplerCase& c : cases) {
      const std::vector<float> logits = test::distinct_logits(n, 100 + n);
      const test::ReferenceDraw ref = test::reference_draw(logits, c);
      ASSERT_GT(ref.top_p_margin, 1e-9) << "case too close to the top-p boundary";
      Sampler s(params_of(c));
      for (size_t i = 0; i < ref.ids.size(); ++i) {
        std::vector<float> l = logits;
        EXPECT_EQ(s.sample_with_uniform(l, {}, ref.mid_u[i]), ref.ids[i])
            << "n " << n << " T " << c.temperature << " k " << c.top_k << " p " << c.top_p
            << " min_p " << c.min_p << " candidate " << i;
      }
      // u = 0 takes the first candidate, u just below 1 the last.
      std::vector<float> l = logits;
      EXPECT_EQ(s.sample_with_uniform(l, {}, 0.0), ref.ids.front());
      l = logits;
      EXPECT_EQ(s.sample_with_uniform(l, {}, std::nextafter(1.0, 0.0)), ref.ids.back());
    }
  }
}

TEST(SamplerUniform, SampleConsumesOneUniformPerDrawFromTheSeed) {
  const std::vector<float> logits = test::distinct_logits(50, 3);
  SamplerParams p = params_of({0.9f, 20, 0.9f, 0.0f});
  p.seed = 77;
  Sampler a(p), b(p);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> l1 = logits, l2 = logits;
    const double u = b.next_uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    EXPECT_EQ(a.sample(l1, {}), b.sample_with_uniform(l2, {}, u)) << "draw " << i;
  }
  // Greedy draws no uniform: the streams stay aligned after a greedy sampler's calls.
  p.temperature = 0.0f;
  Sampler g(p), h(p);
  std::vector<float> l = logits;
  (void)g.sample(l, {});
  EXPECT_EQ(g.next_uniform(), h.next_uniform());
}

}  // namespace
}  // namespace frugal
