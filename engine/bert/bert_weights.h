// The tensors of a BERT model.safetensors, read as fp32. Separate from SafetensorsReader because
// checkpoints saved by older transformers carry integer buffers (embeddings.position_ids, I64),
// which that reader refuses as a whole file: here only the tensors asked for are checked (dtype
// F32/F16/BF16, shape, data inside the file) and the rest of the header is ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/json_reader.h"
#include "common/mapped_file.h"
#include "common/status.h"

namespace rag {

class BertTensorFile {
 public:
  // NotFound when the file is missing; DataLoss for a truncated file or malformed header.
  static StatusOr<std::unique_ptr<BertTensorFile>> Open(const std::string& path);

  bool Has(const std::string& name) const { return header_.Find(name) != nullptr; }
  // The tensor converted to fp32 into out; NotFound, InvalidArgument (shape) or Unsupported
  // (dtype), naming the tensor and the file.
  Status Read(const std::string& name, const std::vector<int64_t>& shape,
              std::vector<float>* out) const;

 private:
  BertTensorFile() = default;
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  JsonValue header_;
  uint64_t data_start_ = 0;
};

}  // namespace rag
