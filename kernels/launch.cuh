// Programmatic dependent launch (Hopper): a kernel launched through LaunchDependent may start
// while the kernel before it on the stream is still finishing; its blocks run up to
// AwaitPriorGrid(), which returns once that kernel has completed and its writes are visible.
// So every kernel launched this way calls AwaitPriorGrid() before it touches any memory the
// previous kernels read or write, and AllowDependentLaunch() early, so that the next kernel's
// launch overlaps its own tail. In a decode step of ~10 small kernels a layer this hides the
// launch gaps between them, also inside CUDA graphs (which capture the attribute).
// Older GPUs, or SetProgrammaticLaunch(false), get plain launches (the device functions are
// then no-ops). Included by .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

namespace rag {

__device__ __forceinline__ void AwaitPriorGrid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void AllowDependentLaunch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launches on the current device use the attribute (compute capability 9.0 and on,
// and not switched off by SetProgrammaticLaunch).
bool ProgrammaticLaunchActive();

// Streaming multiprocessors of the current device (queried once per device; 1 if unknown):
// launchers size split-K grids by it.
int64_t DeviceSmCount();

template <typename... Params, typename... Args>
cudaError_t LaunchDependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                            cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attr;
  config.numAttrs = ProgrammaticLaunchActive() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace rag
