// The FP8 GEMM of FP8 models' prefill (engine/cuda/fp8_matmul.h) against a double-precision
// reference built from the same codes: the activations are quantized on the host as
// QuantizeRowsFp8 must do (scale = max |x_row| / 448, x * (1 / scale) rounded to e4m3 by
// cuda_fp8.h), the weights as `rag quantize` writes them, and the reference sums
// sx[i] * sw[j] * qx[i][l] * qw[j][l] in double. So the tolerance only covers the GEMM's fp32
// accumulation (a wrong scale vector, a transposed operand or a lost accumulate is far above it).
// The codes of QuantizeRowsFp8 itself are compared bit for bit. Shapes: prefill-like m not a
// multiple of the tile sizes, fp32 output with and without accumulation, bf16 output; each in
// both forms (scales in cuBLASLt's epilogue, and a unit-scale GEMM then ScaleFp8Product).
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include <cuda_fp8.h>

#include "engine/cuda/fp8_matmul.h"
#include "kernels/kernels.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag {
namespace {

using testing_gpu::Bf16;
using testing_gpu::DeviceBuffer;
using testing_gpu::FromBf16;
using testing_gpu::GpuTest;
using testing_gpu::ToBf16;

bool HasFp8TensorCores() {
  int device = 0, major = 0, minor = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return major * 10 + minor >= 89;
}

// Rows of v (rows, k) as e4m3 codes with one scale a row, v * (1 / scale) rounded.
void QuantizeRows(const std::vector<float>& v, int64_t rows, int64_t k, std::vector<uint8_t>* codes,
                  std::vector<float>* scale) {
  codes->resize(v.size());
  scale->resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t j = 0; j < k; ++j) amax = std::max(amax, std::fabs(v[r * k + j]));
    const float s = amax > 0 ? amax / 448.0f : 1.0f;
    const float inv = 1.0f / s;
    (*scale)[r] = s;
    for (int64_t j = 0; j < k; ++j) (*codes)[r * k + j] = __nv_fp8_e4m3(v[r * k + j] * inv).__x;
  }
}

float Fp8Value(uint8_t code) {
  __nv_fp8_e4m3 q;
  q.__x = code;
  return static_cast<float>(q);
}

class Fp8MatMulTest : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    if (!HasFp8TensorCores()) GTEST_SKIP() << "FP8 GEMMs need compute capability 8.9 or later";
  }

  struct Problem {
    int64_t m, n, k;
    std::vector<uint16_t> x16;      // x (m, k) bf16
    std::vector<uint8_t> xq, wq;    // the codes of x and w
    std::vector<float> xs, ws;      // their row scales
    std::vector<double> want;       // (m, n) reference
  };

  Problem Make(int64_t m, int64_t n, int64_t k) {
    Problem p{m, n, k};
    p.x16 = ToBf16(RandomFloats(m * k, -3.0f, 3.0f));
    QuantizeRows(FromBf16(p.x16), m, k, &p.xq, &p.xs);
    QuantizeRows(RandomFloats(n * k, -0.05f, 0.05f), n, k, &p.wq, &p.ws);
    p.want.assign(static_cast<size_t>(m * n), 0.0);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t l = 0; l < k; ++l) s += double(Fp8Value(p.xq[i * k + l])) * Fp8Value(p.wq[j * k + l]);
        p.want[i * n + j] = s * p.xs[i] * p.ws[j];
      }
    }
    return p;
  }

  // fp32 accumulation of k products of this size, in any order.
  static double Tolerance(const Problem& p) { return 1e-4 * std::sqrt(static_cast<double>(p.k)); }
};

TEST_F(Fp8MatMulTest, QuantizedActivationsMatchTheHostCodesBitForBit) {
  const int64_t m = 37, k = 1040;
  const std::vector<uint16_t> x16 = ToBf16(RandomFloats(m * k, -50.0f, 50.0f));
  std::vector<uint8_t> want_q;
  std::vector<float> want_s;
  QuantizeRows(FromBf16(x16), m, k, &want_q, &want_s);
  DeviceBuffer<Bf16> x(x16);
  DeviceBuffer<__nv_fp8_e4m3> q(static_cast<size_t>(m * k));
  DeviceBuffer<float> s(static_cast<size_t>(m));
  ASSERT_STATUS_OK(QuantizeRowsFp8(x.get(), m, k, q.get(), s.get(), nullptr));
  EXPECT_EQ(q.ToHost<uint8_t>(), want_q);
  EXPECT_EQ(s.ToHost(), want_s);
}

TEST_F(Fp8MatMulTest, GemmAppliesBothScaleVectorsFp32AndBf16Out) {
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> shapes = {{77, 384, 512}, {300, 256, 1024}};
  for (const auto& [m, n, k] : shapes) {
    const Problem p = Make(m, n, k);
    // The two forms; in the last, the products of an accumulating call (m x n) exceed the
    // buffer of 128 rows of 64 columns, so that call takes cuBLASLt's epilogue.
    struct Form {
      int64_t unit_max_rows, max_accumulated_cols, unit_calls;
    };
    for (const Form& form : {Form{0, 0, 0}, Form{512, 0, 3}, Form{512, 64, 2}}) {
      const int64_t unit_max_rows = form.unit_max_rows;
      SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                   ", unit scales up to " + std::to_string(unit_max_rows) +
                   " rows, accumulated columns " + std::to_string(form.max_accumulated_cols));
      auto mm = Fp8MatMul::Create(nullptr, 512, 2048, form.max_accumulated_cols);
      ASSERT_TRUE(mm.ok()) << mm.status().ToString();
      (*mm)->SetUnitScaleMaxRows(unit_max_rows);
      DeviceBuffer<Bf16> x(p.x16);
      DeviceBuffer<__nv_fp8_e4m3> w(p.wq);
      DeviceBuffer<float> ws(p.ws);
      // y = x W^T, fp32.
      DeviceBuffer<float> y(static_cast<size_t>(m * n));
      ASSERT_STATUS_OK((*mm)->Run(x.get(), m, w.get(), ws.get(), n, k, y.get()));
      testing_gpu::ExpectNear(y.ToHost(), p.want, Tolerance(p), 1e-5, "fp32 out");
      // y += x W^T onto ones.
      DeviceBuffer<float> acc(std::vector<float>(static_cast<size_t>(m * n), 1.0f));
      ASSERT_STATUS_OK(
          (*mm)->Run(x.get(), m, w.get(), ws.get(), n, k, acc.get(), /*accumulate=*/true));
      std::vector<double> plus_one = p.want;
      for (double& v : plus_one) v += 1.0;
      testing_gpu::ExpectNear(acc.ToHost(), plus_one, Tolerance(p), 1e-5, "accumulated");
      // bf16 out: one bf16 rounding more (two in the unit form: the products, then the scaled).
      DeviceBuffer<Bf16> yb(static_cast<size_t>(m * n));
      ASSERT_STATUS_OK((*mm)->Run(x.get(), m, w.get(), ws.get(), n, k, yb.get()));
      testing_gpu::ExpectNear(FromBf16(yb.ToHost<uint16_t>()), p.want, Tolerance(p), 8e-3,
                              "bf16 out");
      EXPECT_EQ((*mm)->unit_scale_calls(), form.unit_calls);
    }
  }
}

TEST_F(Fp8MatMulTest, ShapesOutsideItsBuffersAreRefused) {
  auto mm = Fp8MatMul::Create(nullptr, 16, 256);
  ASSERT_TRUE(mm.ok()) << mm.status().ToString();
  DeviceBuffer<Bf16> x(static_cast<size_t>(32 * 512));
  DeviceBuffer<__nv_fp8_e4m3> w(static_cast<size_t>(64 * 512));
  DeviceBuffer<float> ws(64), y(static_cast<size_t>(32 * 64));
  EXPECT_FALSE((*mm)->Run(x.get(), 32, w.get(), ws.get(), 64, 256, y.get()).ok());  // m > 16
  EXPECT_FALSE((*mm)->Run(x.get(), 16, w.get(), ws.get(), 64, 512, y.get()).ok());  // k > 256
  EXPECT_FALSE((*mm)->Run(x.get(), 16, w.get(), ws.get(), 64, 200, y.get()).ok());  // k % 16
  EXPECT_FALSE(
      (*mm)->Run(x.get(), 16, w.get(), ws.get() + 1, 64, 256, y.get()).ok());  // scales unaligned
}

}  // namespace
}  // namespace rag
