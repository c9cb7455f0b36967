// A GGUF file (llama.cpp's single-file model format, versions 2 and 3) read in place through
// mmap: the metadata key/values, the tensor infos and pointers to each tensor's data.
//
// Layout: magic "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values
// (string key, u32 value type, value; arrays are u32 element type, u64 count, elements), the
// tensor infos (string name, u32 n_dims, u64 dims[n_dims] innermost first, u32 ggml type, u64
// offset relative to the data section), then padding to general.alignment (default 32) and the
// data section. Strings are u64 length + bytes, little-endian throughout.
//
// Open validates everything it can without reading the weights: every length against the bytes
// left, value types, duplicate keys and tensor names, dims (positive, product within int64),
// the row length a multiple of the type's block, offsets aligned, and each tensor's bytes inside
// the file. Errors name the file and the key or tensor at fault.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"
#include "engine/gguf_dequant.h"

namespace rag {

enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
const char* GgufValueTypeName(GgufValueType type);

// One metadata value. Integers of every width are widened into `i` (unsigned 64-bit values
// above INT64_MAX are refused when read), floats into `f`.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  GgufValueType array_type = GgufValueType::kUint8;  // element type when type == kArray
  std::vector<GgufValue> array;

  bool is_integer() const;  // any integer type (not bool)
  bool is_float() const { return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64; }
};

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> dims;  // innermost first: dims[0] is the row length (ggml's ne[0])
  uint64_t offset = 0;        // relative to the data section
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
  std::string DimsString() const;  // "[576, 49152]" (innermost first, as gguf-py prints)
};

class GgufFile {
 public:
  static StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);

  uint32_t version() const { return version_; }
  const std::string& path() const { return path_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  const GgufValue* Find(const std::string& key) const;
  const GgufTensor* FindTensor(const std::string& name) const;

  // Typed metadata: NotFound naming the key when absent, InvalidArgument when of another type.
  StatusOr<int64_t> GetInt(const std::string& key) const;
  StatusOr<double> GetFloat(const std::string& key) const;  // float or integer values
  StatusOr<std::string> GetString(const std::string& key) const;
  StatusOr<const std::vector<GgufValue>*> GetArray(const std::string& key,
                                                   GgufValueType element_type) const;

  // The tensor `name` dequantised to fp32, row-major (dims reversed: rows of dims[0] values).
  // `expected_dims` (innermost first) is checked when non-empty. Errors name the tensor, the
  // file and the type.
  Status ReadFloat(const std::string& name, const std::vector<int64_t>& expected_dims,
                   std::vector<float>* out) const;

 private:
  GgufFile() = default;
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace rag
