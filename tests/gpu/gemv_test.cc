// The decode GEMV against the CPU backend's MatMul (engine/cpu/matmul.cc) on fresh random
// inputs: w and (for the bf16 case) x rounded to bf16 first, then the same values in fp32 on
// both sides. Tolerance per output: |gpu - ref| <= 1e-6 + 1e-5 * sum_j |x_j w_j| (two fp32
// sums of k terms in different orders; a dropped or doubled term of a small k is far above it).
#include <cmath>
#include <string>
#include <vector>

#include "engine/cpu/matmul.h"
#include "kernels/kernels.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::Bf16;
using testing_gpu::DeviceBuffer;
using testing_gpu::FromBf16;
using testing_gpu::GpuTest;
using testing_gpu::ToBf16;

class GemvTest : public GpuTest {
 protected:
  // Runs y = x w^T for one shape with fp32 and bf16 x. w_offset shifts w by that many bf16
  // elements in its buffer (1: rows are not 16-byte aligned, so the scalar path runs).
  void Check(int64_t m, int64_t n, int64_t k, int64_t w_offset = 0) {
    SCOPED_TRACE("m " + std::to_string(m) + " n " + std::to_string(n) + " k " +
                 std::to_string(k) + " w_offset " + std::to_string(w_offset));
    std::vector<uint16_t> w16 = ToBf16(RandomFloats(n * k + w_offset));
    std::vector<uint16_t> x16 = ToBf16(RandomFloats(m * k));
    const std::vector<float> w32 = FromBf16(w16), x32 = FromBf16(x16);
    const float* w = w32.data() + w_offset;

    std::vector<float> want(m * n), bound(m * n);
    MatMul(x32.data(), m, k, w, n, want.data(), nullptr);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t r = 0; r < n; ++r) {
        double s = 0;
        for (int64_t j = 0; j < k; ++j) s += std::fabs(static_cast<double>(x32[i * k + j]) * w[r * k + j]);
        bound[i * n + r] = static_cast<float>(1e-6 + 1e-5 * s);
      }
    }

    DeviceBuffer<Bf16> d_w(w16), d_x16(x16);
    DeviceBuffer<float> d_x32(x32), d_y(m * n);
    const Bf16* dw = d_w.get() + w_offset;
    for (bool bf16_x : {false, true}) {
      CUDA_CHECK(cudaMemset(d_y.get(), 0xff, m * n * sizeof(float)));  // NaN: unwritten shows
      if (bf16_x) {
        ASSERT_STATUS_OK(Gemv(d_x16.get(), dw, m, n, k, d_y.get(), nullptr));
      } else {
        ASSERT_STATUS_OK(Gemv(d_x32.get(), dw, m, n, k, d_y.get(), nullptr));
      }
      std::vector<float> got = d_y.ToHost();
      int bad = 0;
      for (int64_t i = 0; i < m * n && bad < 10; ++i) {
        if (!(std::fabs(got[i] - want[i]) <= bound[i])) {
          ADD_FAILURE() << (bf16_x ? "bf16" : "fp32") << " x: y[" << i / n << "][" << i % n
                        << "] got " << got[i] << ", want " << want[i] << " (tolerance "
                        << bound[i] << ")";
          ++bad;
        }
      }
    }
  }
};

// k % 8 == 0: the 16-byte path, k below, at and past one unrolled step (1024) and not a
// multiple of 256; n not a multiple of the 16 rows of a block.
TEST_F(GemvTest, VectorPath) {
  for (int64_t m : {1, 3, 8}) {
    Check(m, 1, 8);
    Check(m, 17, 264);
    Check(m, 33, 1000);
    Check(m, 45, 2048 + 256 + 8);
  }
}

// k long enough to be cut into chunks for shared memory (m = 1: past 12288; m = 8: past 1536).
TEST_F(GemvTest, ChunkedK) {
  Check(1, 21, 14336);
  Check(3, 19, 14336);
  Check(8, 37, 4096);
  Check(8, 5, 1544);  // a last chunk of 8 elements
}

// k % 8 != 0 or misaligned rows: the scalar path.
TEST_F(GemvTest, ScalarPath) {
  for (int64_t m : {1, 3, 8}) {
    Check(m, 5, 7);
    Check(m, 37, 1001);
    Check(m, 18, 264, /*w_offset=*/1);
  }
  Check(1, 3, 13001);  // chunked as well
}

// Every m from 1 to 8 on a Llama-like row length (each m is its own instantiation).
TEST_F(GemvTest, EveryBatchSize) {
  for (int64_t m = 1; m <= kGemvMaxM; ++m) Check(m, 70, 4096);
}

// GemvAccumulate adds x w^T into a preset y (the o and down projections adding into the
// residual stream), against the CPU's MatMul plus the preset values.
class GemvAccumulateTest : public GpuTest {
 protected:
  void Check(int64_t m, int64_t n, int64_t k) {
    SCOPED_TRACE("m " + std::to_string(m) + " n " + std::to_string(n) + " k " + std::to_string(k));
    const std::vector<uint16_t> w16 = ToBf16(RandomFloats(n * k)), x16 = ToBf16(RandomFloats(m * k));
    const std::vector<float> w = FromBf16(w16), x = FromBf16(x16), y0 = RandomFloats(m * n);
    std::vector<float> want(m * n);
    MatMul(x.data(), m, k, w.data(), n, want.data(), nullptr);
    DeviceBuffer<Bf16> d_w(w16), d_x(x16);
    DeviceBuffer<float> d_y(y0);
    ASSERT_STATUS_OK(GemvAccumulate(d_x.get(), d_w.get(), m, n, k, d_y.get(), nullptr));
    const std::vector<float> got = d_y.ToHost();
    int bad = 0;
    for (int64_t i = 0; i < m * n && bad < 10; ++i) {
      double s = std::fabs(y0[i]);
      for (int64_t j = 0; j < k; ++j) s += std::fabs(static_cast<double>(x[(i / n) * k + j]) * w[(i % n) * k + j]);
      const double expect = static_cast<double>(want[i]) + y0[i], bound = 1e-6 + 1e-5 * s;
      if (!(std::fabs(got[i] - expect) <= bound)) {
        ADD_FAILURE() << "y[" << i / n << "][" << i % n << "] got " << got[i] << ", want " << expect
                      << " (tolerance " << bound << ")";
        ++bad;
      }
    }
  }
};

TEST_F(GemvAccumulateTest, AddsIntoY) {
  for (int64_t m : {1, 5, 8}) Check(m, 45, 2056);
  Check(1, 19, 14336);  // the down projection's k, one launch
  Check(8, 19, 14336);  // chunked k: every chunk adds
  Check(4, 7, 13);      // the scalar path
}

TEST(GemvArgumentsTest, BadShapesAreInvalidArgument) {
  float* y = nullptr;
  const float* x = nullptr;
  EXPECT_EQ(Gemv(x, nullptr, 0, 4, 8, y, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Gemv(x, nullptr, kGemvMaxM + 1, 4, 8, y, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Gemv(x, nullptr, 1, 0, 8, y, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Gemv(x, nullptr, 1, 4, 0, y, nullptr).code(), StatusCode::kInvalidArgument);
  const Bf16* xb = nullptr;
  EXPECT_EQ(GemvAccumulate(xb, nullptr, 9, 4, 8, y, nullptr).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rag
