#include "engine/quantize.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include "common/file_util.h"
#include "engine/fp8.h"
#include "engine/safetensors.h"

namespace rag {
namespace {

constexpr const char* kProjections[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                        "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                        "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                                        "mlp.down_proj.weight"};

// A decoder layer's projection matrix: "model.layers.<n>.<one of kProjections>".
bool IsProjection(const std::string& name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (name.rfind(kPrefix, 0) != 0) return false;
  const size_t dot = name.find('.', kPrefix.size());
  if (dot == std::string::npos || dot == kPrefix.size()) return false;
  for (size_t i = kPrefix.size(); i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  const std::string rest = name.substr(dot + 1);
  return std::any_of(std::begin(kProjections), std::end(kProjections),
                     [&](const char* p) { return rest == p; });
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out;
}

// One tensor of the output: its name, dtype, shape and byte size (data is produced when written).
struct OutTensor {
  std::string name;
  TensorDType dtype;
  std::vector<int64_t> shape;
  uint64_t bytes;
  const TensorView* source;  // the input tensor (for "_scale" entries: the matrix they scale)
  bool scale = false;
};

// The FP8 codes and row scales of matrix t; adds its squared error and norm to *err, *norm.
void QuantizeMatrix(const TensorView& t, std::vector<uint8_t>* codes, std::vector<float>* scales,
                    double* err, double* norm) {
  const int64_t rows = t.shape[0], cols = t.numel() / std::max<int64_t>(rows, 1);
  codes->resize(static_cast<size_t>(t.numel()));
  scales->resize(static_cast<size_t>(rows));
  std::vector<float> row(static_cast<size_t>(cols));
  TensorView one = t;  // a view of one row, for ToFloat
  one.shape = {cols};
  const size_t row_bytes = static_cast<size_t>(cols) * TensorDTypeSize(t.dtype);
  for (int64_t r = 0; r < rows; ++r) {
    one.data = t.data + static_cast<size_t>(r) * row_bytes;
    SafetensorsReader::ToFloat(one, row.data());
    float amax = 0;
    for (float v : row) amax = std::max(amax, std::fabs(v));
    const float s = amax > 0 ? amax / kFp8E4m3Max : 1.0f;
    (*scales)[static_cast<size_t>(r)] = s;
    uint8_t* out = codes->data() + static_cast<size_t>(r * cols);
    for (int64_t c = 0; c < cols; ++c) {
      const float v = row[static_cast<size_t>(c)];
      out[c] = FloatToFp8E4m3(v / s);
      const double d = static_cast<double>(v) - static_cast<double>(Fp8E4m3ToFloat(out[c])) * s;
      *err += d * d;
      *norm += static_cast<double>(v) * v;
    }
  }
}

// The input config.json with "quantization_config" added as its last member.
StatusOr<std::string> QuantizedConfig(const std::string& in_dir) {
  RAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(in_dir + "/config.json"));
  if (text.find("\"quantization_config\"") != std::string::npos) {
    return FailedPrecondition(in_dir + "/config.json already has a quantization_config: quantize "
                              "the original bf16 model");
  }
  const size_t close = text.rfind('}');
  if (close == std::string::npos) return InvalidArgument(in_dir + "/config.json is not a JSON object");
  std::string head = text.substr(0, close);
  while (!head.empty() && std::isspace(static_cast<unsigned char>(head.back()))) head.pop_back();
  const bool empty = !head.empty() && head.back() == '{';
  return head + (empty ? "\n" : ",\n") +
         "  \"quantization_config\": {\"quant_method\": \"rag-fp8\", \"format\": \"e4m3\", "
         "\"weight_scales\": \"per_output_row\", \"scale_suffix\": \"_scale\"}\n}\n";
}

}  // namespace

StatusOr<QuantizeReport> QuantizeModelFp8(const std::string& in_dir, const std::string& out_dir,
                                          bool force,
                                          const std::function<void(int64_t, int64_t)>& progress) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_dir, ec) && fs::equivalent(in_dir, out_dir, ec)) {
    return InvalidArgument("the output directory must not be the model's own directory");
  }
  if (!force && fs::exists(out_dir + "/model.safetensors", ec)) {
    return AlreadyExists(out_dir + "/model.safetensors exists (give --force to replace it)");
  }
  RAG_ASSIGN_OR_RETURN(std::string config, QuantizedConfig(in_dir));
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsReader> reader, SafetensorsReader::OpenDir(in_dir));

  // The output's tensors, sorted by name; each matrix's scale entry follows its name's order.
  std::vector<OutTensor> out;
  for (const std::string& name : reader->Names()) {
    RAG_ASSIGN_OR_RETURN(const TensorView* t, reader->Get(name));
    if (IsProjection(name) && t->shape.size() == 2) {
      out.push_back({name, TensorDType::kF8E4M3, t->shape, static_cast<uint64_t>(t->numel()), t});
      out.push_back({name + "_scale", TensorDType::kF32, {t->shape[0]},
                     static_cast<uint64_t>(t->shape[0]) * 4, t, true});
    } else {
      out.push_back({name, t->dtype, t->shape, t->nbytes, t});
    }
  }
  std::sort(out.begin(), out.end(), [](const OutTensor& a, const OutTensor& b) { return a.name < b.name; });

  std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"quantized_by\":\"rag quantize\"}";
  uint64_t offset = 0;
  for (const OutTensor& t : out) {
    header += ",\"" + JsonEscape(t.name) + "\":{\"dtype\":\"" + TensorDTypeName(t.dtype) + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) header += ',';
      header += std::to_string(t.shape[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes) + "]}";
    offset += t.bytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned

  RAG_RETURN_IF_ERROR(MakeDirs(out_dir));
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> file,
                       AtomicFileWriter::Create(out_dir + "/model.safetensors"));
  char size_le[8];
  for (int i = 0; i < 8; ++i) size_le[i] = static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i));
  RAG_RETURN_IF_ERROR(file->Write({size_le, 8}));
  RAG_RETURN_IF_ERROR(file->Write(header));

  QuantizeReport report;
  double err = 0, norm = 0;
  // A matrix is quantized when its codes are written; its scales (which sort after it) are kept
  // until their own entry comes.
  std::map<std::string, std::vector<float>> pending_scales;
  std::vector<uint8_t> codes;
  for (size_t i = 0; i < out.size(); ++i) {
    const OutTensor& t = out[i];
    if (t.scale) {
      auto it = pending_scales.find(t.source->name);
      if (it == pending_scales.end()) return Internal("quantize: scales of " + t.source->name + " before its codes");
      RAG_RETURN_IF_ERROR(file->Write({reinterpret_cast<const char*>(it->second.data()), it->second.size() * 4}));
      pending_scales.erase(it);
    } else if (t.dtype == TensorDType::kF8E4M3) {
      std::vector<float> scales;
      QuantizeMatrix(*t.source, &codes, &scales, &err, &norm);
      RAG_RETURN_IF_ERROR(file->Write({reinterpret_cast<const char*>(codes.data()), codes.size()}));
      pending_scales[t.name] = std::move(scales);
      report.bytes_in += t.source->nbytes;
      ++report.quantized;
    } else {
      RAG_RETURN_IF_ERROR(file->Write({reinterpret_cast<const char*>(t.source->data), t.source->nbytes}));
      report.bytes_in += t.source->nbytes;
      ++report.copied;
    }
    report.bytes_out += t.bytes;
    if (progress) progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(out.size()));
  }
  if (!pending_scales.empty()) return Internal("quantize: scales never written");
  RAG_RETURN_IF_ERROR(file->Commit());
  report.relative_rms_error = norm > 0 ? std::sqrt(err / norm) : 0;

  RAG_RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/config.json", config));
  for (const char* name : {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json"}) {
    const std::string src = in_dir + "/" + name;
    if (!fs::exists(src, ec)) continue;
    RAG_ASSIGN_OR_RETURN(std::string data, ReadFileToString(src));
    RAG_RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/" + name, data));
  }
  return report;
}

}  // namespace rag
