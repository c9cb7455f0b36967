// The packed-weight product against a double-precision reference on random shapes, including
// output counts that are not a multiple of the 16-row panel and input-row counts that are not a
// multiple of the 6-row register block (every tail of the micro-kernel).
#include "engine/cpu/packed_matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace rag {
namespace {

TEST(PackedMatMul, MatchesTheReferenceOnEveryTail) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  struct Shape { int64_t n, m, k; };
  for (const Shape& s : {Shape{1, 1, 1}, Shape{5, 17, 33}, Shape{6, 16, 384}, Shape{13, 40, 7},
                         Shape{64, 1152, 384}, Shape{7, 31, 1536}}) {
    std::vector<float> x(static_cast<size_t>(s.n * s.k)), w(static_cast<size_t>(s.m * s.k));
    for (float& v : x) v = d(rng);
    for (float& v : w) v = d(rng);
    const PackedWeights p = PackWeights(w.data(), s.m, s.k);
    std::vector<float> out(static_cast<size_t>(s.n * s.m), std::nanf(""));
    MatMulPacked(x.data(), s.n, p, out.data());
    for (int64_t i = 0; i < s.n; ++i) {
      for (int64_t j = 0; j < s.m; ++j) {
        double ref = 0, mag = 0;
        for (int64_t t = 0; t < s.k; ++t) {
          ref += static_cast<double>(x[i * s.k + t]) * w[j * s.k + t];
          mag += std::fabs(static_cast<double>(x[i * s.k + t]) * w[j * s.k + t]);
        }
        ASSERT_NEAR(out[i * s.m + j], ref, 1e-6 + 1e-5 * mag)
            << "n " << s.n << " m " << s.m << " k " << s.k << " at (" << i << ", " << j << ")";
      }
    }
  }
}

}  // namespace
}  // namespace rag
