#include "engine/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "engine/fp8.h"

namespace rag {

const char* TensorDTypeName(TensorDType dtype) {
  switch (dtype) {
    case TensorDType::kBF16: return "BF16";
    case TensorDType::kF16: return "F16";
    case TensorDType::kF32: return "F32";
    case TensorDType::kF8E4M3: return "F8_E4M3";
  }
  return "?";
}

size_t TensorDTypeSize(TensorDType dtype) {
  switch (dtype) {
    case TensorDType::kF32: return 4;
    case TensorDType::kF8E4M3: return 1;
    default: return 2;
  }
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::ShapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

float Bf16ToFloat(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float F16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    u = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    u = sign | ((112 - e) << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void SafetensorsReader::ToFloat(const TensorView& t, float* out) {
  const size_t n = static_cast<size_t>(t.numel());
  switch (t.dtype) {
    case TensorDType::kF32:
      // An empty tensor may come with a null `out` (an empty vector's data()); memcpy must not see
      // it even for 0 bytes (UBSan, tests/fuzz/safetensors_fuzz).
      if (n > 0) std::memcpy(out, t.data, n * 4);
      return;
    case TensorDType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, t.data + 2 * i, 2);
        out[i] = Bf16ToFloat(b);
      }
      return;
    case TensorDType::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, t.data + 2 * i, 2);
        out[i] = F16ToFloat(b);
      }
      return;
    case TensorDType::kF8E4M3:
      for (size_t i = 0; i < n; ++i) out[i] = Fp8E4m3ToFloat(t.data[i]);
      return;
  }
}

namespace {

Status ParseDType(const std::string& name, const std::string& tensor, const std::string& file,
                  TensorDType* out) {
  if (name == "BF16") *out = TensorDType::kBF16;
  else if (name == "F16") *out = TensorDType::kF16;
  else if (name == "F32") *out = TensorDType::kF32;
  else if (name == "F8_E4M3") *out = TensorDType::kF8E4M3;
  else
    return Unsupported(file + ": tensor \"" + tensor + "\" has dtype " + name +
                       "; supported: BF16, F16, F32, F8_E4M3");
  return Status::Ok();
}

}  // namespace

Status SafetensorsReader::AddFile(const std::string& path) {
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  const uint8_t* base = file->data();
  const uint64_t size = file->size();
  if (size < 8) return DataLoss(path + ": truncated safetensors file (" + std::to_string(size) +
                                " bytes, no header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];  // little-endian
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return DataLoss(path + ": safetensors header length " + std::to_string(header_len) +
                    " exceeds the limit of " + std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  if (header_len > size - 8) {
    return DataLoss(path + ": truncated safetensors file (header of " + std::to_string(header_len) +
                    " bytes, file of " + std::to_string(size) + ")");
  }
  std::string_view text(reinterpret_cast<const char*>(base + 8), header_len);
  RAG_ASSIGN_OR_RETURN(JsonValue header, ReadJson(text, path + " (safetensors header)"));
  if (!header.is_object()) return DataLoss(path + ": safetensors header is not a JSON object");

  const uint8_t* data_start = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  struct Range { uint64_t begin, end; std::string name; };
  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.members()) {
    if (name == "__metadata__") continue;
    const std::string what = path + ": tensor \"" + name + "\"";
    if (!entry.is_object()) return DataLoss(what + ": header entry is not an object");
    const JsonValue* dtype = entry.Find("dtype");
    const JsonValue* shape = entry.Find("shape");
    const JsonValue* offsets = entry.Find("data_offsets");
    if (dtype == nullptr || !dtype->is_string()) return DataLoss(what + ": missing \"dtype\"");
    if (shape == nullptr || !shape->is_array()) return DataLoss(what + ": missing \"shape\"");
    if (offsets == nullptr || !offsets->is_array() || offsets->size() != 2 ||
        !offsets->items()[0].is_integer() || !offsets->items()[1].is_integer()) {
      return DataLoss(what + ": \"data_offsets\" must be [begin, end]");
    }
    TensorView t;
    t.name = name;
    t.file = path;
    RAG_RETURN_IF_ERROR(ParseDType(dtype->as_string(), name, path, &t.dtype));
    uint64_t numel = 1;
    for (const JsonValue& d : shape->items()) {
      if (!d.is_integer() || d.as_int() < 0 || d.as_int() > (int64_t{1} << 40)) {
        return DataLoss(what + ": bad dimension in \"shape\"");
      }
      t.shape.push_back(d.as_int());
      // Checked before multiplying: two dimensions of 2^40 would wrap around to 0 elements (found
      // by tests/fuzz/safetensors_fuzz).
      const auto dim = static_cast<uint64_t>(d.as_int());
      if (dim != 0 && numel > (uint64_t{1} << 40) / dim) return DataLoss(what + ": shape too large");
      numel *= dim;
    }
    int64_t begin = offsets->items()[0].as_int(), end = offsets->items()[1].as_int();
    if (begin < 0 || end < begin) return DataLoss(what + ": data_offsets [begin, end] out of order");
    if (static_cast<uint64_t>(end) > data_size) {
      return DataLoss(what + ": data ends at byte " + std::to_string(end) + " of the data section, "
                      "which has only " + std::to_string(data_size) + " bytes (truncated file?)");
    }
    t.nbytes = static_cast<size_t>(end - begin);
    if (t.nbytes != numel * TensorDTypeSize(t.dtype)) {
      return DataLoss(what + ": " + std::to_string(t.nbytes) + " bytes of data for shape " +
                      t.ShapeString() + " of " + TensorDTypeName(t.dtype) + " (expected " +
                      std::to_string(numel * TensorDTypeSize(t.dtype)) + ")");
    }
    t.data = data_start + begin;
    if (tensors_.count(name) > 0) {
      return DataLoss(what + ": defined twice (also in " + tensors_[name].file + ")");
    }
    ranges.push_back({static_cast<uint64_t>(begin), static_cast<uint64_t>(end), name});
    tensors_.emplace(name, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      return DataLoss(path + ": tensor \"" + ranges[i].name + "\" overlaps tensor \"" +
                      ranges[i - 1].name + "\"");
    }
  }
  files_.push_back(std::move(file));
  return Status::Ok();
}

StatusOr<std::unique_ptr<SafetensorsReader>> SafetensorsReader::OpenFile(const std::string& path) {
  std::unique_ptr<SafetensorsReader> r(new SafetensorsReader());
  r->where_ = path;
  RAG_RETURN_IF_ERROR(r->AddFile(path));
  return r;
}

StatusOr<std::unique_ptr<SafetensorsReader>> SafetensorsReader::OpenDir(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  std::error_code ec;
  if (!fs::exists(index_path, ec)) {
    const std::string single = (fs::path(dir) / "model.safetensors").string();
    if (!fs::exists(single, ec)) {
      return NotFound(dir + ": no model.safetensors or model.safetensors.index.json");
    }
    return OpenFile(single);
  }
  RAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_path));
  RAG_ASSIGN_OR_RETURN(JsonValue index, ReadJson(text, index_path));
  const JsonValue* map = index.Find("weight_map");
  if (map == nullptr || !map->is_object()) {
    return InvalidArgument(index_path + ": field \"weight_map\" is missing or not an object");
  }
  std::unique_ptr<SafetensorsReader> r(new SafetensorsReader());
  r->where_ = index_path;
  std::set<std::string> shards;
  for (const auto& [name, file] : map->members()) {
    if (!file.is_string() || file.as_string().empty() ||
        file.as_string().find('/') != std::string::npos || file.as_string()[0] == '.') {
      return InvalidArgument(index_path + ": weight_map entry for tensor \"" + name +
                             "\" must be a file name in the model directory");
    }
    shards.insert(file.as_string());
  }
  for (const std::string& shard : shards) {
    RAG_RETURN_IF_ERROR(r->AddFile((fs::path(dir) / shard).string()).WithPrefix(index_path));
  }
  for (const auto& [name, file] : map->members()) {
    auto it = r->tensors_.find(name);
    if (it == r->tensors_.end() || BaseName(it->second.file) != file.as_string()) {
      return DataLoss(index_path + ": tensor \"" + name + "\" is listed in weight_map under " +
                      file.as_string() + " but that file does not contain it");
    }
  }
  return r;
}

StatusOr<const TensorView*> SafetensorsReader::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return NotFound(where_ + ": missing tensor \"" + name + "\"");
  return &it->second;
}

StatusOr<const TensorView*> SafetensorsReader::Get(
    const std::string& name, const std::vector<int64_t>& expected_shape) const {
  RAG_ASSIGN_OR_RETURN(const TensorView* t, Get(name));
  if (t->shape != expected_shape) {
    TensorView want;
    want.shape = expected_shape;
    return InvalidArgument(t->file + ": tensor \"" + name + "\" has shape " + t->ShapeString() +
                           ", expected " + want.ShapeString());
  }
  return t;
}

std::vector<std::string> SafetensorsReader::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors_) names.push_back(name);
  return names;
}

}  // namespace rag
