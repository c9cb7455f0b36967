// Safetensors weights read in place through mmap: one model.safetensors, or shards listed by
// model.safetensors.index.json ("weight_map": tensor name -> shard file name).
//
// Every header is validated when opened: size limit, JSON form, known dtype, data offsets
// inside the file, byte length equal to the shape's element count times the dtype size, and no
// two tensors overlapping. Errors name the tensor and the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"

namespace rag {

// F8_E4M3: `rag quantize`'s projection weights (engine/fp8.h), each with an F32 "<name>_scale"
// tensor of one scale per row beside it.
enum class TensorDType { kBF16, kF16, kF32, kF8E4M3 };

const char* TensorDTypeName(TensorDType dtype);  // "BF16", "F16", "F32", "F8_E4M3"
size_t TensorDTypeSize(TensorDType dtype);

// One tensor of a mapped file; `data` points into the mapping and lives as long as the reader.
struct TensorView {
  std::string name;
  std::string file;  // the file it lives in (for messages)
  TensorDType dtype = TensorDType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // not aligned in general
  size_t nbytes = 0;

  int64_t numel() const;
  std::string ShapeString() const;  // "[4, 16]"
};

// Largest header we accept (the safetensors reference uses the same limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

class SafetensorsReader {
 public:
  // Opens dir/model.safetensors.index.json (sharded) when it exists, else dir/model.safetensors.
  static StatusOr<std::unique_ptr<SafetensorsReader>> OpenDir(const std::string& dir);
  // Opens one .safetensors file.
  static StatusOr<std::unique_ptr<SafetensorsReader>> OpenFile(const std::string& path);

  // The tensor, or NotFound naming the tensor and the file(s) searched.
  StatusOr<const TensorView*> Get(const std::string& name) const;
  // As Get, and InvalidArgument naming the tensor, file, expected and actual shapes on mismatch.
  StatusOr<const TensorView*> Get(const std::string& name,
                                  const std::vector<int64_t>& expected_shape) const;
  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  std::vector<std::string> Names() const;

  // Converts the tensor to fp32 into out (numel() floats). BF16, F16 and F8_E4M3 convert
  // exactly (F8_E4M3 without its scales).
  static void ToFloat(const TensorView& t, float* out);

 private:
  SafetensorsReader() = default;
  Status AddFile(const std::string& path);

  std::string where_;  // the file or the index, for messages
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

// Half-precision conversions (exact; F16 subnormals, infinities and NaN included).
float Bf16ToFloat(uint16_t bits);
float F16ToFloat(uint16_t bits);

}  // namespace rag
