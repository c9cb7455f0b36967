#include "engine/model_config.h"

#include <algorithm>
#include <filesystem>
#include <string_view>

#include "common/file_util.h"
#include "common/json_reader.h"

namespace rag {
namespace {

// Field readers for one JSON file: every error names the file and the field.
class FieldReader {
 public:
  FieldReader(const JsonValue& object, std::string file) : object_(object), file_(std::move(file)) {}

  Status Error(std::string_view field, std::string_view problem) const {
    return InvalidArgument(file_ + ": field \"" + std::string(field) + "\" " + std::string(problem));
  }

  // A positive integer, required unless `fallback` >= 0 (then used when absent or null).
  Status PositiveInt(const JsonValue& obj, std::string_view field, int64_t* out,
                     int64_t fallback = -1) const {
    const JsonValue* v = obj.Find(field);
    if (v == nullptr || v->is_null()) {
      if (fallback >= 0) {
        *out = fallback;
        return Status::Ok();
      }
      return Error(field, "is missing");
    }
    if (!v->is_integer()) return Error(field, "must be an integer");
    if (v->as_int() <= 0) return Error(field, "must be positive, got " + std::to_string(v->as_int()));
    *out = v->as_int();
    return Status::Ok();
  }

  // A number; the fallback is used when absent or null unless `required`.
  Status Number(const JsonValue& obj, std::string_view field, double* out, bool required) const {
    const JsonValue* v = obj.Find(field);
    if (v == nullptr || v->is_null()) {
      return required ? Error(field, "is missing") : Status::Ok();
    }
    if (!v->is_number()) return Error(field, "must be a number");
    *out = v->as_double();
    return Status::Ok();
  }

  Status Bool(std::string_view field, bool* out) const {
    const JsonValue* v = object_.Find(field);
    if (v == nullptr || v->is_null()) return Status::Ok();
    if (!v->is_bool()) return Error(field, "must be true or false");
    *out = v->as_bool();
    return Status::Ok();
  }

  // An int or a list of ints (eos_token_id); null or absent adds nothing.
  Status TokenIds(std::string_view field, std::vector<int32_t>* out) const {
    const JsonValue* v = object_.Find(field);
    if (v == nullptr || v->is_null()) return Status::Ok();
    auto add = [&](const JsonValue& id) -> Status {
      if (!id.is_integer() || id.as_int() < 0 || id.as_int() > INT32_MAX) {
        return Error(field, "must be a token id (non-negative integer) or a list of them");
      }
      int32_t t = static_cast<int32_t>(id.as_int());
      if (std::find(out->begin(), out->end(), t) == out->end()) out->push_back(t);
      return Status::Ok();
    };
    if (v->is_array()) {
      for (const JsonValue& id : v->items()) RAG_RETURN_IF_ERROR(add(id));
      return Status::Ok();
    }
    return add(*v);
  }

  const JsonValue& object() const { return object_; }

 private:
  const JsonValue& object_;
  std::string file_;
};

StatusOr<JsonValue> ReadJsonObject(const std::string& path) {
  RAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  RAG_ASSIGN_OR_RETURN(JsonValue v, ReadJson(text, path));
  if (!v.is_object()) return InvalidArgument(path + ": expected a JSON object at the top level");
  return v;
}

// Reads the rope type and the llama3 fields from `obj` (a rope_scaling or rope_parameters
// object). `where` is the object's field name, for messages.
Status ReadRopeObject(const FieldReader& r, const JsonValue& obj, const std::string& where,
                      RopeScaling* out) {
  const JsonValue* type = obj.Find("rope_type");
  if (type == nullptr) type = obj.Find("type");  // the older spelling
  std::string t = type != nullptr && type->is_string() ? type->as_string() : "";
  if (type != nullptr && !type->is_string()) return r.Error(where + ".rope_type", "must be a string");
  if (t.empty() || t == "default") {
    out->type.clear();
    return Status::Ok();
  }
  if (t != "llama3") {
    return Unsupported(r.Error(where + ".rope_type", "is \"" + t +
                                   "\"; supported: \"default\", \"llama3\"").message());
  }
  out->type = "llama3";
  RAG_RETURN_IF_ERROR(r.Number(obj, "factor", &out->factor, true).WithPrefix(where));
  RAG_RETURN_IF_ERROR(r.Number(obj, "low_freq_factor", &out->low_freq_factor, true).WithPrefix(where));
  RAG_RETURN_IF_ERROR(r.Number(obj, "high_freq_factor", &out->high_freq_factor, true).WithPrefix(where));
  RAG_RETURN_IF_ERROR(r.PositiveInt(obj, "original_max_position_embeddings",
                                    &out->original_max_position_embeddings).WithPrefix(where));
  if (!(out->factor > 0)) return r.Error(where + ".factor", "must be positive");
  if (!(out->high_freq_factor > out->low_freq_factor) || !(out->low_freq_factor > 0)) {
    return r.Error(where + ".high_freq_factor",
                   "must be greater than low_freq_factor, and both positive");
  }
  return Status::Ok();
}

Status ReadRope(const FieldReader& r, ModelConfig* c) {
  const JsonValue& root = r.object();
  // Newer files: rope_parameters {rope_theta, rope_type, ...}; it wins when both forms appear.
  const JsonValue* params = root.Find("rope_parameters");
  if (params != nullptr && !params->is_null()) {
    if (!params->is_object()) return r.Error("rope_parameters", "must be an object");
    RAG_RETURN_IF_ERROR(r.Number(root, "rope_theta", &c->rope_theta, false));
    RAG_RETURN_IF_ERROR(r.Number(*params, "rope_theta", &c->rope_theta, false)
                            .WithPrefix("rope_parameters"));
    RAG_RETURN_IF_ERROR(ReadRopeObject(r, *params, "rope_parameters", &c->rope_scaling));
  } else {
    RAG_RETURN_IF_ERROR(r.Number(root, "rope_theta", &c->rope_theta, false));
    const JsonValue* scaling = root.Find("rope_scaling");
    if (scaling != nullptr && !scaling->is_null()) {
      if (!scaling->is_object()) return r.Error("rope_scaling", "must be an object or null");
      RAG_RETURN_IF_ERROR(ReadRopeObject(r, *scaling, "rope_scaling", &c->rope_scaling));
    }
  }
  if (!(c->rope_theta > 0)) return r.Error("rope_theta", "must be positive");
  return Status::Ok();
}

Status ReadArchitecture(const FieldReader& r) {
  const JsonValue* arch = r.object().Find("architectures");
  if (arch == nullptr || !arch->is_array() || arch->size() == 0) {
    return r.Error("architectures", "must be a non-empty list (expected [\"LlamaForCausalLM\"])");
  }
  for (const JsonValue& a : arch->items()) {
    if (a.is_string() && a.as_string() == "LlamaForCausalLM") return Status::Ok();
  }
  std::string got = arch->items()[0].is_string() ? arch->items()[0].as_string() : "?";
  return Unsupported(
      r.Error("architectures", "is [\"" + got + "\"]; only LlamaForCausalLM is supported").message());
}

// Features of LlamaConfig that our backends do not implement: refuse rather than compute wrong.
Status RejectUnsupported(const FieldReader& r) {
  for (const char* field : {"attention_bias", "mlp_bias"}) {
    bool on = false;
    RAG_RETURN_IF_ERROR(r.Bool(field, &on));
    if (on) return Unsupported(r.Error(field, "is true; biases are not supported").message());
  }
  const JsonValue* act = r.object().Find("hidden_act");
  if (act != nullptr && !(act->is_string() && act->as_string() == "silu")) {
    return Unsupported(r.Error("hidden_act", "must be \"silu\"").message());
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ModelConfig> LoadModelConfig(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  RAG_ASSIGN_OR_RETURN(JsonValue root, ReadJsonObject(path));
  FieldReader r(root, path);
  RAG_RETURN_IF_ERROR(ReadArchitecture(r));
  RAG_RETURN_IF_ERROR(RejectUnsupported(r));

  ModelConfig c;
  RAG_RETURN_IF_ERROR(r.PositiveInt(root, "vocab_size", &c.vocab_size));
  RAG_RETURN_IF_ERROR(r.PositiveInt(root, "hidden_size", &c.hidden_size));
  RAG_RETURN_IF_ERROR(r.PositiveInt(root, "intermediate_size", &c.intermediate_size));
  RAG_RETURN_IF_ERROR(r.PositiveInt(root, "num_hidden_layers", &c.num_hidden_layers));
  RAG_RETURN_IF_ERROR(r.PositiveInt(root, "num_attention_heads", &c.num_attention_heads));
  RAG_RETURN_IF_ERROR(
      r.PositiveInt(root, "num_key_value_heads", &c.num_key_value_heads, c.num_attention_heads));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return r.Error("num_key_value_heads", "(" + std::to_string(c.num_key_value_heads) +
                                              ") must divide num_attention_heads (" +
                                              std::to_string(c.num_attention_heads) + ")");
  }
  // As in transformers: head_dim defaults to hidden_size / num_attention_heads.
  if (root.Find("head_dim") == nullptr || root.Find("head_dim")->is_null()) {
    if (c.hidden_size % c.num_attention_heads != 0) {
      return r.Error("num_attention_heads", "(" + std::to_string(c.num_attention_heads) +
                                                ") must divide hidden_size (" +
                                                std::to_string(c.hidden_size) +
                                                ") when head_dim is not given");
    }
  }
  RAG_RETURN_IF_ERROR(
      r.PositiveInt(root, "head_dim", &c.head_dim, c.hidden_size / c.num_attention_heads));
  if (c.head_dim % 2 != 0) return r.Error("head_dim", "must be even for rotary embeddings");
  RAG_RETURN_IF_ERROR(r.PositiveInt(root, "max_position_embeddings", &c.max_position_embeddings));
  c.rms_norm_eps = 1e-6;  // LlamaConfig's default
  RAG_RETURN_IF_ERROR(r.Number(root, "rms_norm_eps", &c.rms_norm_eps, false));
  if (!(c.rms_norm_eps > 0)) return r.Error("rms_norm_eps", "must be positive");
  RAG_RETURN_IF_ERROR(ReadRope(r, &c));
  RAG_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c.tie_word_embeddings));

  std::vector<int32_t> bos;
  RAG_RETURN_IF_ERROR(r.TokenIds("bos_token_id", &bos));
  if (!bos.empty()) c.bos_token_id = bos[0];
  RAG_RETURN_IF_ERROR(r.TokenIds("eos_token_id", &c.eos_token_ids));
  for (const char* field : {"torch_dtype", "dtype"}) {  // transformers 5 writes "dtype"
    const JsonValue* v = root.Find(field);
    if (v != nullptr && v->is_string() && c.torch_dtype.empty()) c.torch_dtype = v->as_string();
  }

  const std::string gen_path = (std::filesystem::path(dir) / "generation_config.json").string();
  std::error_code ec;
  if (std::filesystem::exists(gen_path, ec)) {
    RAG_ASSIGN_OR_RETURN(JsonValue gen, ReadJsonObject(gen_path));
    FieldReader g(gen, gen_path);
    RAG_RETURN_IF_ERROR(g.TokenIds("eos_token_id", &c.eos_token_ids));
    if (c.bos_token_id < 0) {
      RAG_RETURN_IF_ERROR(g.TokenIds("bos_token_id", &bos));
      if (!bos.empty()) c.bos_token_id = bos[0];
    }
  }
  for (int32_t id : c.eos_token_ids) {
    if (id >= c.vocab_size) {
      return InvalidArgument(path + ": eos token id " + std::to_string(id) +
                             " is outside the vocabulary (vocab_size " +
                             std::to_string(c.vocab_size) + ")");
    }
  }
  return c;
}

}  // namespace rag
