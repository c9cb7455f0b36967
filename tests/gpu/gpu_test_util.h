// Helpers of the GPU kernel tests: skip without a device, device buffers, bf16 rounding and
// random inputs. Every test draws fresh random inputs (seeded from the clock, printed on
// failure through the fixture) so repeated runs cover new values.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda_check.h"

namespace rag::testing_gpu {

// True when a CUDA device is usable (cudaGetDeviceCount succeeds with at least one device).
inline bool HasCudaDevice() {
  static const bool has = [] {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) cudaGetLastError();  // clear the sticky-free error state
    return err == cudaSuccess && count > 0;
  }();
  return has;
}

// Fixture of every test that launches a kernel: skips without a device, gives each test a fresh
// seed (recorded as a test property, so a failure can be replayed).
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HasCudaDevice()) {
      GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount failed or found 0): GPU kernel tests "
                      "run on a GPU machine with `ctest -L gpu`";
    }
    seed_ = static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    rng_.seed(seed_);
    RecordProperty("seed", std::to_string(seed_));
  }
  void TearDown() override {
    if (HasCudaDevice()) {
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess) << "asynchronous kernel fault";
    }
  }

  std::vector<float> RandomFloats(size_t count, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(count);
    for (float& f : v) f = d(rng_);
    return v;
  }

  uint32_t seed_ = 0;
  std::mt19937 rng_;
};

// fp32 -> bf16 bits, round to nearest even (finite inputs), as torch's .to(bfloat16).
inline uint16_t FloatToBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float Bf16BitsToFloat(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline std::vector<uint16_t> ToBf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = FloatToBf16Bits(v[i]);
  return out;
}
inline std::vector<float> FromBf16(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = Bf16BitsToFloat(v[i]);
  return out;
}

// Owns `count` elements of T in device memory; copies to and from host vectors.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), std::max<size_t>(1, count) * sizeof(T)));
  }
  template <typename H>
  explicit DeviceBuffer(const std::vector<H>& host) : DeviceBuffer(host.size()) {
    static_assert(sizeof(H) == sizeof(T));
    CUDA_CHECK(cudaMemcpy(ptr_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  template <typename H = T>
  std::vector<H> ToHost() const {
    static_assert(sizeof(H) == sizeof(T));
    std::vector<H> host(count_);
    CUDA_CHECK(cudaMemcpy(host.data(), ptr_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t count_;
};

using Bf16 = __nv_bfloat16;

// Every got[i] within abs_tol + rel_tol * |want[i]| (want in float or double); the first ten
// misses are reported under `what`.
template <typename W>
void ExpectNear(const std::vector<float>& got, const std::vector<W>& want, double abs_tol,
                double rel_tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 10; ++i) {
    const double w = static_cast<double>(want[i]);
    if (!(std::fabs(got[i] - w) <= abs_tol + rel_tol * std::fabs(w))) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << w;
      ++bad;
    }
  }
}

}  // namespace rag::testing_gpu

// In test bodies: a failed Status fails the test with its message.
#define ASSERT_STATUS_OK(expr)                          \
  do {                                                  \
    ::rag::Status rag_status_ = (expr);                 \
    ASSERT_TRUE(rag_status_.ok()) << rag_status_.ToString(); \
  } while (0)
