#include <atomic>

#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

std::atomic<bool> g_programmatic_launch{true};
constexpr int kMaxDevices = 64;

}  // namespace

void SetProgrammaticLaunch(bool enabled) { g_programmatic_launch.store(enabled); }

bool ProgrammaticLaunchActive() {
  if (!g_programmatic_launch.load(std::memory_order_relaxed)) return false;
  static std::atomic<int> major[kMaxDevices] = {};  // 0: not asked yet, -1: unknown
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) return false;
  int m = major[device].load(std::memory_order_relaxed);
  if (m == 0) {
    if (cudaDeviceGetAttribute(&m, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) m = -1;
    major[device].store(m, std::memory_order_relaxed);
  }
  return m >= 9;
}

int64_t DeviceSmCount() {
  static std::atomic<int64_t> cached[kMaxDevices] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) return 1;
  int64_t sms = cached[device].load(std::memory_order_relaxed);
  if (sms == 0) {
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) v = 1;
    sms = v < 1 ? 1 : v;
    cached[device].store(sms, std::memory_order_relaxed);
  }
  return sms;
}

}  // namespace rag
