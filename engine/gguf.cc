#include "engine/gguf.h"

#include <cstring>
#include <limits>

namespace rag {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
// Bounds that keep a corrupt count from allocating the machine away before the byte checks
// catch it: a string or array can never be longer than the file anyway.
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 2;

// Reads the header fields sequentially; every read checks the bytes left first.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  Status Read(void* out, size_t n, const std::string& what) {
    if (n > size_ - pos_) {
      return DataLoss(path_ + ": truncated GGUF file: " + what + " at byte " + std::to_string(pos_) +
                      " needs " + std::to_string(n) + " bytes, " + std::to_string(size_ - pos_) + " left");
    }
    if (n > 0) std::memcpy(out, data_ + pos_, n);  // an empty array's out may be null
    pos_ += n;
    return Status::Ok();
  }
  template <typename T>
  Status Get(T* out, const std::string& what) { return Read(out, sizeof(T), what); }

  Status String(std::string* out, const std::string& what) {
    uint64_t len = 0;
    RAG_RETURN_IF_ERROR(Get(&len, what + " length"));
    if (len > size_ - pos_) {
      return DataLoss(path_ + ": truncated GGUF file: " + what + " of " + std::to_string(len) +
                      " bytes at byte " + std::to_string(pos_) + ", " + std::to_string(size_ - pos_) + " left");
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return Status::Ok();
  }

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

size_t ScalarSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    default: return 0;
  }
}

Status ReadValue(Cursor& c, GgufValueType type, const std::string& key, int depth, GgufValue* v) {
  v->type = type;
  const std::string what = "value of " + key;
  switch (type) {
#define RAG_GGUF_INT(T)                          \
  {                                              \
    T x;                                         \
    RAG_RETURN_IF_ERROR(c.Get(&x, what));        \
    v->i = static_cast<int64_t>(x);              \
    return Status::Ok();                         \
  }
    case GgufValueType::kUint8: RAG_GGUF_INT(uint8_t)
    case GgufValueType::kInt8: RAG_GGUF_INT(int8_t)
    case GgufValueType::kUint16: RAG_GGUF_INT(uint16_t)
    case GgufValueType::kInt16: RAG_GGUF_INT(int16_t)
    case GgufValueType::kUint32: RAG_GGUF_INT(uint32_t)
    case GgufValueType::kInt32: RAG_GGUF_INT(int32_t)
    case GgufValueType::kInt64: RAG_GGUF_INT(int64_t)
#undef RAG_GGUF_INT
    case GgufValueType::kUint64: {
      uint64_t x;
      RAG_RETURN_IF_ERROR(c.Get(&x, what));
      if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return InvalidArgument(c.path() + ": " + key + ": uint64 value " + std::to_string(x) + " is out of range");
      }
      v->i = static_cast<int64_t>(x);
      return Status::Ok();
    }
    case GgufValueType::kFloat32: {
      float x;
      RAG_RETURN_IF_ERROR(c.Get(&x, what));
      v->f = x;
      return Status::Ok();
    }
    case GgufValueType::kFloat64: return c.Get(&v->f, what);
    case GgufValueType::kBool: {
      uint8_t x;
      RAG_RETURN_IF_ERROR(c.Get(&x, what));
      if (x > 1) return InvalidArgument(c.path() + ": " + key + ": bool value " + std::to_string(x) + " is not 0 or 1");
      v->b = x == 1;
      return Status::Ok();
    }
    case GgufValueType::kString: return c.String(&v->s, what);
    case GgufValueType::kArray: {
      if (depth >= kMaxArrayDepth) return InvalidArgument(c.path() + ": " + key + ": arrays nested too deeply");
      uint32_t et;
      uint64_t n;
      RAG_RETURN_IF_ERROR(c.Get(&et, what + " element type"));
      RAG_RETURN_IF_ERROR(c.Get(&n, what + " element count"));
      if (et > static_cast<uint32_t>(GgufValueType::kFloat64)) {
        return InvalidArgument(c.path() + ": " + key + ": unknown array element type " + std::to_string(et));
      }
      v->array_type = static_cast<GgufValueType>(et);
      // Every element takes at least one byte (strings 8): a count beyond the bytes left is a
      // truncated or corrupt file, found before reserving memory for it.
      const size_t min_size = v->array_type == GgufValueType::kString ? 8
                              : v->array_type == GgufValueType::kArray ? 12
                                                                       : ScalarSize(v->array_type);
      if (n > c.left() / min_size) {
        return DataLoss(c.path() + ": truncated GGUF file: " + key + " array of " + std::to_string(n) +
                        " elements does not fit in the " + std::to_string(c.left()) + " bytes left");
      }
      v->array.resize(static_cast<size_t>(n));
      for (GgufValue& e : v->array) RAG_RETURN_IF_ERROR(ReadValue(c, v->array_type, key, depth + 1, &e));
      return Status::Ok();
    }
  }
  return InvalidArgument(c.path() + ": " + key + ": unknown value type " + std::to_string(static_cast<uint32_t>(type)));
}

}  // namespace

const char* GgufValueTypeName(GgufValueType type) {
  static const char* const kNames[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                       "bool", "string", "array", "uint64", "int64", "float64"};
  const auto i = static_cast<uint32_t>(type);
  return i < 13 ? kNames[i] : "unknown";
}

bool GgufValue::is_integer() const {
  return type != GgufValueType::kBool && !is_float() && type != GgufValueType::kString &&
         type != GgufValueType::kArray;
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string GgufTensor::DimsString() const {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->path_ = path;
  RAG_ASSIGN_OR_RETURN(g->file_, MappedFile::Open(path));
  Cursor c(g->file_->data(), g->file_->size(), path);
  uint32_t magic = 0;
  RAG_RETURN_IF_ERROR(c.Get(&magic, "magic"));
  if (magic != kMagic) return InvalidArgument(path + ": not a GGUF file (bad magic)");
  RAG_RETURN_IF_ERROR(c.Get(&g->version_, "version"));
  if (g->version_ != 2 && g->version_ != 3) {
    return Unsupported(path + ": GGUF version " + std::to_string(g->version_) + " (supported: 2, 3)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  RAG_RETURN_IF_ERROR(c.Get(&n_tensors, "tensor count"));
  RAG_RETURN_IF_ERROR(c.Get(&n_kv, "metadata count"));
  // A key/value takes at least 12 bytes and a tensor info at least 24.
  if (n_kv > c.left() / 12 || n_tensors > c.left() / 24) {
    return DataLoss(path + ": truncated GGUF file: " + std::to_string(n_kv) + " keys and " +
                    std::to_string(n_tensors) + " tensors cannot fit in " + std::to_string(c.left()) + " bytes");
  }
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    uint32_t type = 0;
    RAG_RETURN_IF_ERROR(c.String(&key, "metadata key " + std::to_string(k)));
    RAG_RETURN_IF_ERROR(c.Get(&type, "type of " + key));
    GgufValue v;
    RAG_RETURN_IF_ERROR(ReadValue(c, static_cast<GgufValueType>(type), key, 0, &v));
    if (!g->metadata_.emplace(key, std::move(v)).second) {
      return InvalidArgument(path + ": metadata key " + key + " appears twice");
    }
  }
  uint64_t alignment = kDefaultAlignment;
  if (const GgufValue* a = g->Find("general.alignment")) {
    if (!a->is_integer() || a->i <= 0 || (a->i & (a->i - 1)) != 0) {
      return InvalidArgument(path + ": general.alignment must be a positive power of two");
    }
    alignment = static_cast<uint64_t>(a->i);
  }
  g->tensors_.resize(static_cast<size_t>(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensor& ti = g->tensors_[static_cast<size_t>(t)];
    RAG_RETURN_IF_ERROR(c.String(&ti.name, "name of tensor " + std::to_string(t)));
    const std::string where = path + ": tensor " + ti.name;
    uint32_t n_dims = 0, type = 0;
    RAG_RETURN_IF_ERROR(c.Get(&n_dims, "dims of tensor " + ti.name));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return InvalidArgument(where + " has " + std::to_string(n_dims) + " dims (1 to 4 supported)");
    }
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim = 0;
      RAG_RETURN_IF_ERROR(c.Get(&dim, "dims of tensor " + ti.name));
      if (dim == 0 || dim > (1ull << 40) || numel > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(dim)) {
        return InvalidArgument(where + " has an invalid dimension " + std::to_string(dim));
      }
      ti.dims.push_back(static_cast<int64_t>(dim));
      numel *= static_cast<int64_t>(dim);
    }
    RAG_RETURN_IF_ERROR(c.Get(&type, "type of tensor " + ti.name));
    RAG_RETURN_IF_ERROR(c.Get(&ti.offset, "offset of tensor " + ti.name));
    const GgmlTypeTraits traits = GgmlTraits(type);
    if (traits.block_elems == 0) {
      return Unsupported(where + " has unknown ggml type " + std::to_string(type));
    }
    ti.type = static_cast<GgmlType>(type);
    if (ti.dims[0] % traits.block_elems != 0) {
      return InvalidArgument(where + ": row length " + std::to_string(ti.dims[0]) + " is not a multiple of the " +
                             GgmlTypeName(type) + " block (" + std::to_string(traits.block_elems) + ")");
    }
    ti.nbytes = static_cast<size_t>(numel / traits.block_elems) * traits.block_bytes;
    if (ti.offset % alignment != 0) {
      return InvalidArgument(where + ": data offset " + std::to_string(ti.offset) +
                             " is not a multiple of general.alignment " + std::to_string(alignment));
    }
    if (!g->tensor_index_.emplace(ti.name, static_cast<size_t>(t)).second) {
      return InvalidArgument(path + ": tensor " + ti.name + " appears twice");
    }
  }
  const uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  const uint64_t size = g->file_->size();
  for (GgufTensor& ti : g->tensors_) {
    if (data_start > size || ti.offset > size - data_start || ti.nbytes > size - data_start - ti.offset) {
      return DataLoss(path + ": truncated GGUF file: tensor " + ti.name + " (" + GgmlTypeName(static_cast<uint32_t>(ti.type)) +
                      ", " + std::to_string(ti.nbytes) + " bytes at data offset " + std::to_string(ti.offset) +
                      ") ends past the end of the file (" + std::to_string(size) + " bytes)");
    }
    ti.data = g->file_->data() + data_start + ti.offset;
  }
  return g;
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensor* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

StatusOr<int64_t> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFound(path_ + ": metadata key " + key + " is missing");
  if (!v->is_integer()) {
    return InvalidArgument(path_ + ": metadata key " + key + " is " + GgufValueTypeName(v->type) + ", not an integer");
  }
  return v->i;
}

StatusOr<double> GgufFile::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFound(path_ + ": metadata key " + key + " is missing");
  if (v->is_float()) return v->f;
  if (v->is_integer()) return static_cast<double>(v->i);
  return InvalidArgument(path_ + ": metadata key " + key + " is " + GgufValueTypeName(v->type) + ", not a number");
}

StatusOr<std::string> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFound(path_ + ": metadata key " + key + " is missing");
  if (v->type != GgufValueType::kString) {
    return InvalidArgument(path_ + ": metadata key " + key + " is " + GgufValueTypeName(v->type) + ", not a string");
  }
  return v->s;
}

StatusOr<const std::vector<GgufValue>*> GgufFile::GetArray(const std::string& key,
                                                          GgufValueType element_type) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFound(path_ + ": metadata key " + key + " is missing");
  const bool int_ok = element_type == GgufValueType::kInt32 && v->type == GgufValueType::kArray &&
                      (v->array_type == GgufValueType::kUint32 || v->array_type == GgufValueType::kInt32);
  if (v->type != GgufValueType::kArray || (v->array_type != element_type && !int_ok)) {
    return InvalidArgument(path_ + ": metadata key " + key + " is not an array of " + GgufValueTypeName(element_type));
  }
  return &v->array;
}

Status GgufFile::ReadFloat(const std::string& name, const std::vector<int64_t>& expected_dims,
                           std::vector<float>* out) const {
  const GgufTensor* t = FindTensor(name);
  if (!t) return NotFound(path_ + ": tensor " + name + " is missing");
  if (!expected_dims.empty() && t->dims != expected_dims) {
    GgufTensor want;
    want.dims = expected_dims;
    return InvalidArgument(path_ + ": tensor " + name + " has dims " + t->DimsString() + ", expected " +
                           want.DimsString());
  }
  out->resize(static_cast<size_t>(t->numel()));
  Status st = Dequantize(t->type, t->data, t->numel(), out->data());
  if (!st.ok()) return st.WithPrefix(path_ + ": tensor " + name);
  return Status::Ok();
}

}  // namespace rag
