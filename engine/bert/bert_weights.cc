#include "engine/bert/bert_weights.h"

#include <cstring>

#include "engine/safetensors.h"

namespace rag {

StatusOr<std::unique_ptr<BertTensorFile>> BertTensorFile::Open(const std::string& path) {
  auto f = std::unique_ptr<BertTensorFile>(new BertTensorFile());
  f->path_ = path;
  RAG_ASSIGN_OR_RETURN(f->file_, MappedFile::Open(path));
  const size_t size = f->file_->size();
  if (size < 8) return DataLoss(path + ": too short for a safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | f->file_->data()[i];  // little-endian
  if (n > kMaxSafetensorsHeaderBytes || n > size - 8) {
    return DataLoss(path + ": header length " + std::to_string(n) + " does not fit the file");
  }
  auto header =
      ReadJson(std::string_view(reinterpret_cast<const char*>(f->file_->data()) + 8, n), path);
  if (!header.ok()) return DataLoss(header.status().message());
  if (!header->is_object()) return DataLoss(path + ": header is not a JSON object");
  f->header_ = std::move(header).value();
  f->data_start_ = 8 + n;
  return f;
}

Status BertTensorFile::Read(const std::string& name, const std::vector<int64_t>& shape,
                            std::vector<float>* out) const {
  const std::string what = path_ + ": tensor \"" + name + "\"";
  const JsonValue* t = header_.Find(name);
  if (t == nullptr) return NotFound(what + " not found");
  const JsonValue* dtype = t->Find("dtype");
  const JsonValue* dims = t->Find("shape");
  const JsonValue* offsets = t->Find("data_offsets");
  if (dtype == nullptr || dims == nullptr || !dims->is_array() || offsets == nullptr ||
      !offsets->is_array() || offsets->size() != 2) {
    return DataLoss(what + ": missing dtype, shape or data_offsets");
  }
  size_t elem;
  if (dtype->as_string() == "F32")
    elem = 4;
  else if (dtype->as_string() == "F16" || dtype->as_string() == "BF16")
    elem = 2;
  else
    return Unsupported(what + " has dtype " + dtype->as_string() + "; supported: F32, F16, BF16");
  std::vector<int64_t> actual;
  for (const JsonValue& d : dims->items()) actual.push_back(d.as_int());
  if (actual != shape) {
    auto str = [](const std::vector<int64_t>& v) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      return s + "]";
    };
    return InvalidArgument(what + " has shape " + str(actual) + ", expected " + str(shape));
  }
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const JsonValue& b = offsets->items()[0];
  const JsonValue& e = offsets->items()[1];
  if (!b.is_integer() || !e.is_integer() || b.as_int() < 0 || e.as_int() < b.as_int() ||
      static_cast<uint64_t>(e.as_int()) > file_->size() - data_start_ ||
      static_cast<uint64_t>(e.as_int() - b.as_int()) != static_cast<uint64_t>(numel) * elem) {
    return DataLoss(what + ": data_offsets outside the file or not matching the shape");
  }
  const uint8_t* src = file_->data() + data_start_ + b.as_int();
  out->resize(static_cast<size_t>(numel));
  if (elem == 4) {
    std::memcpy(out->data(), src, static_cast<size_t>(numel) * 4);
    return Status::Ok();
  }
  const bool bf16 = dtype->as_string() == "BF16";
  for (int64_t i = 0; i < numel; ++i) {
    uint16_t bits;
    std::memcpy(&bits, src + 2 * i, 2);
    (*out)[static_cast<size_t>(i)] = bf16 ? Bf16ToFloat(bits) : F16ToFloat(bits);
  }
  return Status::Ok();
}

}  // namespace rag
