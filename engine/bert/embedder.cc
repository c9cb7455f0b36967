#include "engine/bert/embedder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <thread>

#include "common/file_util.h"
#include "common/json_reader.h"
#include "common/thread_pool.h"
#include "engine/bert/bert_model.h"
#include "engine/bert/wordpiece.h"

namespace rag {

Embedder::~Embedder() = default;

namespace {

// Tokens per forward pass: sequences are packed without padding, so this only bounds the
// activation memory (about 4096 * (3H + 3H + I) floats, ~60 MB for MiniLM) and keeps row blocks
// of the linear layers busy on every thread.
constexpr size_t kTokensPerPass = 4096;

enum class Pooling { kMean, kCls };

// BertModel on the CPU's cores.
class CpuBertEncoder : public BertEncoder {
 public:
  CpuBertEncoder(std::unique_ptr<BertModel> model, int threads)
      : model_(std::move(model)),
        pool_(threads > 1 ? std::make_unique<ThreadPool>(static_cast<size_t>(threads - 1))
                          : nullptr) {}
  const BertConfig& config() const override { return model_->config(); }
  Status Encode(const std::vector<std::vector<int32_t>>& seqs, std::vector<float>* out) override {
    return model_->Forward(seqs, pool_.get(), out);
  }

 private:
  std::unique_ptr<BertModel> model_;
  std::unique_ptr<ThreadPool> pool_;
};

class BertEmbedder : public Embedder {
 public:
  BertEmbedder(std::string name, std::unique_ptr<BertEncoder> encoder,
               std::unique_ptr<WordPieceTokenizer> tokenizer, int max_len, Pooling pooling,
               bool normalize)
      : name_(std::move(name)),
        encoder_(std::move(encoder)),
        tokenizer_(std::move(tokenizer)),
        max_len_(max_len),
        pooling_(pooling),
        normalize_(normalize) {}

  const std::string& name() const override { return name_; }
  int dim() const override { return static_cast<int>(encoder_->config().hidden); }

  StatusOr<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts) override {
    std::vector<std::vector<int32_t>> ids(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      auto enc = tokenizer_->Encode(texts[i], max_len_);
      if (!enc.ok()) return enc.status().WithPrefix("text " + std::to_string(i));
      ids[i] = std::move(enc).value();
    }
    // Similar lengths together: the packed passes then hold whole sequences of one size class,
    // and attention work per task is even.
    std::vector<size_t> order(texts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });
    std::vector<std::vector<float>> result(texts.size());
    std::lock_guard<std::mutex> lock(mu_);  // the encoder (its thread pool or GPU buffers) is shared
    const int64_t h = encoder_->config().hidden;
    std::vector<float> hidden;
    for (size_t k = 0; k < order.size();) {
      std::vector<std::vector<int32_t>> batch;
      std::vector<size_t> which;
      size_t tokens = 0;
      while (k < order.size() &&
             (batch.empty() || tokens + ids[order[k]].size() <= kTokensPerPass)) {
        tokens += ids[order[k]].size();
        batch.push_back(std::move(ids[order[k]]));
        which.push_back(order[k]);
        ++k;
      }
      RAG_RETURN_IF_ERROR(encoder_->Encode(batch, &hidden));
      size_t row = 0;
      for (size_t b = 0; b < batch.size(); ++b) {
        std::vector<double> acc(static_cast<size_t>(h), 0.0);
        const size_t n = pooling_ == Pooling::kCls ? 1 : batch[b].size();
        for (size_t r = row; r < row + n; ++r) {
          const float* v = hidden.data() + static_cast<int64_t>(r) * h;
          for (int64_t j = 0; j < h; ++j) acc[static_cast<size_t>(j)] += v[j];
        }
        std::vector<float> e(static_cast<size_t>(h));
        double norm = 0;
        for (int64_t j = 0; j < h; ++j) {
          e[static_cast<size_t>(j)] =
              static_cast<float>(acc[static_cast<size_t>(j)] / static_cast<double>(n));
          norm += static_cast<double>(e[static_cast<size_t>(j)]) * e[static_cast<size_t>(j)];
        }
        if (normalize_) {  // torch.nn.functional.normalize: x / max(||x||, 1e-12)
          const float inv = static_cast<float>(1.0 / std::max(std::sqrt(norm), 1e-12));
          for (float& f : e) f *= inv;
        }
        result[which[b]] = std::move(e);
        row += batch[b].size();
      }
    }
    return result;
  }

 private:
  std::string name_;
  std::unique_ptr<BertEncoder> encoder_;
  std::unique_ptr<WordPieceTokenizer> tokenizer_;
  int max_len_;
  Pooling pooling_;
  bool normalize_;
  std::mutex mu_;
};

StatusOr<JsonValue> ReadJsonFile(const std::string& path) {
  RAG_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ReadJson(text, path);
}

bool Flag(const JsonValue& obj, const char* key) {
  const JsonValue* v = obj.Find(key);
  return v != nullptr && v->is_bool() && v->as_bool();
}

}  // namespace

StatusOr<std::unique_ptr<Embedder>> LoadBertEmbedder(const std::string& dir, int num_threads,
                                                     const BertEncoderFactory& device_encoder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFound(dir + ": no such model directory (scripts/setup.sh fetches all-MiniLM-L6-v2)");
  }
  for (const char* f : {"config.json", "tokenizer.json"}) {
    if (!fs::exists(dir + "/" + f, ec)) return NotFound(dir + "/" + f + ": no such file");
  }
  RAG_ASSIGN_OR_RETURN(BertHostWeights weights, LoadBertWeights(dir));
  const BertConfig config = weights.config;
  RAG_ASSIGN_OR_RETURN(auto tokenizer, WordPieceTokenizer::Load(dir + "/tokenizer.json"));
  if (tokenizer->vocab_size() > config.vocab_size) {
    return InvalidArgument(dir +
                           "/tokenizer.json: vocabulary larger than config.json's vocab_size");
  }
  int64_t max_len = 512;
  if (fs::exists(dir + "/sentence_bert_config.json", ec)) {
    RAG_ASSIGN_OR_RETURN(JsonValue sb, ReadJsonFile(dir + "/sentence_bert_config.json"));
    if (const JsonValue* v = sb.Find("max_seq_length"); v != nullptr && v->is_integer())
      max_len = v->as_int();
    // sentence-transformers would lowercase with Python's str.lower() before the tokenizer (whose
    // own normalizer lowercases already for uncased models); not reproduced here.
    if (Flag(sb, "do_lower_case")) {
      return Unsupported(dir + "/sentence_bert_config.json: do_lower_case true is not supported");
    }
  }
  max_len = std::min(max_len, config.max_positions);
  if (max_len < 2)
    return InvalidArgument(dir + "/sentence_bert_config.json: max_seq_length below 2");
  Pooling pooling = Pooling::kMean;
  if (fs::exists(dir + "/1_Pooling/config.json", ec)) {
    RAG_ASSIGN_OR_RETURN(JsonValue pc, ReadJsonFile(dir + "/1_Pooling/config.json"));
    const bool mean = Flag(pc, "pooling_mode_mean_tokens"),
               cls = Flag(pc, "pooling_mode_cls_token");
    if (Flag(pc, "pooling_mode_max_tokens") || Flag(pc, "pooling_mode_mean_sqrt_len_tokens") ||
        mean == cls) {
      return Unsupported(dir +
                         "/1_Pooling/config.json: only one of mean or CLS pooling is supported");
    }
    pooling = cls ? Pooling::kCls : Pooling::kMean;
  }
  bool normalize = false;
  if (fs::exists(dir + "/modules.json", ec)) {
    RAG_ASSIGN_OR_RETURN(JsonValue modules, ReadJsonFile(dir + "/modules.json"));
    for (const JsonValue& m : modules.items()) {
      const JsonValue* type = m.Find("type");
      if (type != nullptr && type->as_string() == "sentence_transformers.models.Normalize")
        normalize = true;
    }
  }
  std::unique_ptr<BertEncoder> encoder;
  if (device_encoder) {
    RAG_ASSIGN_OR_RETURN(encoder, device_encoder(weights));
  } else {
    const int threads = num_threads > 0
                            ? num_threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    encoder =
        std::make_unique<CpuBertEncoder>(BertModel::FromWeights(std::move(weights)), threads);
  }
  std::string name = fs::path(dir).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(dir).lexically_normal().parent_path().filename().string();
  return std::unique_ptr<Embedder>(new BertEmbedder(std::move(name), std::move(encoder),
                                                    std::move(tokenizer), static_cast<int>(max_len),
                                                    pooling, normalize));
}

}  // namespace rag
