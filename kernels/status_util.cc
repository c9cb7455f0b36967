#include <string>

#include "kernels/cuda_check.h"

namespace rag {

Status CudaError(cudaError_t err, const char* what, const char* file, int line) {
  return Internal(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " +
                  cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

}  // namespace rag
