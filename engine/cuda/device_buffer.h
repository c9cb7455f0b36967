// Owning handles of CUDA resources (device memory, pinned host memory), freed on destruction.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

#include "common/status.h"
#include "kernels/cuda_check.h"

namespace rag {

// cudaMalloc'd bytes; move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      Reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }

  // ResourceExhausted naming `what` and the size when the device is out of memory.
  static StatusOr<DeviceBuffer> Allocate(size_t bytes, const std::string& what) {
    DeviceBuffer b;
    if (bytes == 0) return b;
    cudaError_t err = cudaMalloc(&b.ptr_, bytes);
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      return Status(StatusCode::kResourceExhausted,
                    "cuda: cannot allocate " + std::to_string(bytes >> 20) + " MiB for " + what +
                        " (" + std::to_string(free_bytes >> 20) + " MiB free of " +
                        std::to_string(total >> 20) + "): " + cudaGetErrorString(err));
    }
    b.bytes_ = bytes;
    return b;
  }

  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void Reset() {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// cudaMallocHost'd (pinned) bytes, for asynchronous copies; move-only.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { Reset(); }
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      Reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  static StatusOr<PinnedBuffer> Allocate(size_t bytes) {
    PinnedBuffer b;
    if (bytes == 0) return b;
    RAG_CUDA_RETURN_IF_ERROR(cudaMallocHost(&b.ptr_, bytes));
    b.bytes_ = bytes;
    return b;
  }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void Reset() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace rag
