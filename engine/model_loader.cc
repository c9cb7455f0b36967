#include "engine/model_loader.h"

#include <filesystem>

#include "common/logging.h"
#include "engine/gguf.h"
#include "engine/gguf_config.h"

namespace rag {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

StatusOr<LoadedModel> LoadGguf(const std::string& path, const ModelLoadOptions& options) {
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  RAG_ASSIGN_OR_RETURN(ModelConfig config, GgufModelConfig(*file));
  LoadedModel m;
  RAG_ASSIGN_OR_RETURN(m.tokenizer, Tokenizer::FromGguf(*file));
  RAG_ASSIGN_OR_RETURN(CpuWeights weights, LoadCpuWeights(config, *file));
  if (options.from_weights) {
    RAG_ASSIGN_OR_RETURN(m.backend, options.from_weights(std::move(config), std::move(weights)));
  } else {
    RAG_ASSIGN_OR_RETURN(m.backend, CreateCpuBackend(std::move(config), std::move(weights), options.cpu));
  }
  RAG_LOG(DEBUG) << "model loader: " << path << " (GGUF v" << file->version() << ", "
                 << file->tensors().size() << " tensors, dequantised to fp32)";
  return m;
}

}  // namespace

StatusOr<LoadedModel> LoadModel(const std::string& path, const CpuBackendOptions& options) {
  ModelLoadOptions load;
  load.cpu = options;
  return LoadModel(path, load);
}

StatusOr<LoadedModel> LoadModel(const std::string& path, const ModelLoadOptions& options) {
  std::error_code ec;
  const std::filesystem::path p(path);
  std::string name = p.filename().string();
  if (name.empty()) name = p.parent_path().filename().string();  // "dir/"
  if (EndsWith(path, ".gguf")) {
    RAG_ASSIGN_OR_RETURN(LoadedModel m, LoadGguf(path, options));
    m.name = name;
    return m;
  }
  if (std::filesystem::is_regular_file(p, ec)) {
    return InvalidArgument(path + ": a model is a directory or a .gguf file");
  }
  // A directory, or a missing path: the errors then name the file that is missing in it.
  LoadedModel m;
  m.name = name;
  RAG_ASSIGN_OR_RETURN(m.tokenizer, Tokenizer::Load(path + "/tokenizer.json"));
  if (options.from_dir) {
    RAG_ASSIGN_OR_RETURN(m.backend, options.from_dir(path));
  } else {
    RAG_ASSIGN_OR_RETURN(m.backend, CreateCpuBackend(path, options.cpu));
  }
  return m;
}

}  // namespace rag
