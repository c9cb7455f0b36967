#include "server/assistant.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "common/file_util.h"
#include "common/logging.h"
#include "engine/bert/embedder.h"
#include "engine/chat_template.h"
#include "engine/engine.h"
#include "engine/model_loader.h"
#include "server/model_device.h"
#include "ingest/parser.h"
#include "retrieval/bm25_query.h"
#include "retrieval/extractive_answerer.h"
#include "retrieval/near_duplicate.h"
#include "retrieval/rank_fusion.h"

namespace rag {
namespace {

constexpr size_t kMaxQuestionBytes = 8192;
// BM25's weight in the fusion with the dense ranking (Assistant::FuseWithDense says why).
constexpr double kBm25FusionWeight = 0.5;
constexpr const char* kNoAnswer =
    "I could not find an answer to this question in your documents.";

double MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

// Pieces of about `target` bytes, cut after a space (so never inside a UTF-8 sequence): how an
// extractive answer is streamed.
std::vector<std::string> SplitForStreaming(std::string_view text, size_t target) {
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < text.size()) {
    const size_t space = start + target >= text.size() ? text.npos : text.find(' ', start + target);
    if (space == text.npos) {
      pieces.emplace_back(text.substr(start));
      break;
    }
    pieces.emplace_back(text.substr(start, space + 1 - start));
    start = space + 1;
  }
  return pieces;
}

// The queue between the engine thread (the producer: token callback) and the thread that asked
// for the answer (the consumer), which turns pieces into events.
struct GenerationStream {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  int tokens = 0;
  std::chrono::steady_clock::time_point last_token;  // of the tokens counted
  bool done = false;
  FinishReason reason = FinishReason::kNone;
  Status error;
};

}  // namespace

// The loaded model; the Engine runs its own thread and is shared by all queries.
struct Assistant::Model {
  std::string name;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat;  // absent when the tokenizer lacks <|begin_of_text|>
  std::optional<int32_t> im_start, im_end, bos;
  std::unique_ptr<Engine> engine;
};

Assistant::Assistant(AssistantOptions options, std::unique_ptr<DocumentStore> store)
    : options_(std::move(options)), store_(std::move(store)) {}
Assistant::~Assistant() = default;

const std::string& Assistant::model_name() const {
  static const std::string kNone;
  return model_ ? model_->name : kNone;
}

StatusOr<std::unique_ptr<Assistant>> Assistant::Open(const AssistantOptions& options) {
  std::string mode = options.mode.empty() ? (options.model_path.empty() ? "extractive" : "model")
                                          : options.mode;
  if (mode != "model" && mode != "extractive") {
    return InvalidArgument("mode must be \"model\" or \"extractive\", not \"" + mode + "\"");
  }
  if (mode == "model" && options.model_path.empty()) {
    return InvalidArgument("model mode needs a model: give --model DIR or FILE.gguf");
  }
  RAG_RETURN_IF_ERROR(MakeDirs(options.data_dir + "/files"));
  // Uploads and index saves that a killed process left half written (their temporary files;
  // the files they were replacing are intact).
  if (const int removed = RemoveStaleTempFiles(options.data_dir + "/files") +
                          RemoveStaleTempFiles(options.data_dir);
      removed > 0) {
    RAG_LOG(INFO) << "data: removed " << removed << " temporary file(s) of interrupted writes";
  }
  RAG_ASSIGN_OR_RETURN(auto store, DocumentStore::Open(options.data_dir + "/rag.db"));
  std::unique_ptr<Assistant> assistant(new Assistant(options, std::move(store)));
  assistant->mode_ = mode;
  if (!options.embedder_path.empty()) {
    RAG_ASSIGN_OR_RETURN(BertEncoderFactory encoder, EmbedderEncoderFor(options.device));
    RAG_ASSIGN_OR_RETURN(std::unique_ptr<Embedder> embedder,
                         LoadBertEmbedder(options.embedder_path, options.model_threads, encoder));
    RAG_ASSIGN_OR_RETURN(assistant->dense_,
                         DenseIndex::Open(options.data_dir, std::move(embedder), assistant->store_.get()));
  }
  if (mode == "model") {
    CpuBackendOptions backend_options;
    backend_options.num_threads = options.model_threads;
    RAG_ASSIGN_OR_RETURN(ModelLoadOptions load, ModelLoadOptionsFor(options.device, backend_options, options.gpu));
    RAG_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(options.model_path, load));
    auto model = std::make_unique<Model>();
    model->name = loaded.name;
    model->tokenizer = std::move(loaded.tokenizer);
    const Tokenizer& tok = *model->tokenizer;
    model->im_start = tok.TokenId("<|im_start|>");
    model->im_end = tok.TokenId("<|im_end|>");
    model->bos = tok.TokenId("<|begin_of_text|>");
    if (!model->im_start || !model->im_end) {
      return Unsupported(options.model_path +
                         ": the tokenizer has no <|im_start|>/<|im_end|> tokens (not a ChatML model)");
    }
    if (StatusOr<ChatTemplate> chat = ChatTemplate::Create(tok); chat.ok()) model->chat = *chat;
    const EngineOptions engine_options = EngineOptions::For(loaded.backend->info());
    model->engine = std::make_unique<Engine>(std::move(loaded.backend), engine_options);
    RAG_LOG(INFO) << "model: " << model->name << " loaded from " << options.model_path;
    assistant->model_ = std::move(model);
  }
  return assistant;
}

std::string Assistant::StoredFilePath(const std::string& content_hash) const {
  return options_.data_dir + "/files/" + content_hash;
}

StatusOr<AddResult> Assistant::AddUpload(std::string_view bytes, const std::string& filename,
                                         const std::string& collection) {
  if (filename.empty()) return InvalidArgument("the upload has no file name");
  if (!IsSupportedFileName(filename)) {
    return Unsupported(filename + ": unsupported file type (supported: .pdf .txt .md .html)");
  }
  if (bytes.empty()) return InvalidArgument(filename + ": the file is empty");
  if (static_cast<int64_t>(bytes.size()) > options_.max_upload_bytes) {
    return ResourceExhausted(filename + ": the file is larger than the limit of " +
                             std::to_string(options_.max_upload_bytes >> 20) + " MB");
  }
  const std::string hash = Sha256Hex(bytes);
  // The file is on disk (fsync'ed) before the row exists, so a queued row always has its file.
  const std::string path = StoredFilePath(hash);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) RAG_RETURN_IF_ERROR(WriteFileAtomic(path, bytes));
  NewDocument doc;
  doc.collection = collection;
  doc.content_hash = hash;
  doc.filename = filename;
  doc.bytes = static_cast<int64_t>(bytes.size());
  AddResult result;
  RAG_ASSIGN_OR_RETURN(result.document, store_->CreateDocument(doc, &result.duplicate));
  RAG_LOG(INFO) << "upload: " << (result.duplicate ? "duplicate of" : "stored") << " document id="
                << result.document.id << " file=" << filename << " bytes=" << bytes.size();
  return result;
}

StatusOr<std::string> Assistant::ReadOriginal(const DocumentRecord& doc) const {
  const std::string saved = StoredFilePath(doc.content_hash);
  std::error_code ec;
  if (std::filesystem::exists(saved, ec)) return ReadFileToString(saved);
  if (!doc.source_path.empty()) {
    StatusOr<std::string> bytes = ReadFileToString(doc.source_path);
    if (bytes.ok() && Sha256Hex(*bytes) == doc.content_hash) return bytes;
  }
  return NotFound("the original file of document " + std::to_string(doc.id) +
                  " is no longer available");
}

StatusOr<IngestStats> Assistant::ProcessDocument(int64_t id, const IngestProgressFn& progress) {
  RAG_ASSIGN_OR_RETURN(DocumentRecord doc, store_->GetDocument(id));
  // Uploads live under files/; documents from `rag ingest` are read where they are.
  std::string path = StoredFilePath(doc.content_hash);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !doc.source_path.empty()) path = doc.source_path;
  StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) {
    Status st = bytes.status().WithPrefix(doc.filename);
    (void)store_->SetStatus(id, "failed", st.message());
    ++documents_failed_;
    return st;
  }
  if (!doc.source_path.empty() && Sha256Hex(*bytes) != doc.content_hash) {
    Status st = FailedPrecondition(doc.filename + ": the file changed on disk since it was queued; ingest it again");
    (void)store_->SetStatus(id, "failed", st.message());
    ++documents_failed_;
    return st;
  }
  StatusOr<IngestStats> stats =
      IngestDocument(*store_, id, *bytes, doc.filename, options_.chunking, progress);
  if (!stats.ok()) {
    ++documents_failed_;
    return stats.status();
  }
  IndexDocument(id, stats->removed_chunk_ids);
  ++documents_ingested_;
  pages_ingested_ += stats->pages;
  chunks_ingested_ += stats->chunks;
  return stats;
}

Assistant::Counters Assistant::counters() const {
  Counters c;
  c.documents_ingested = documents_ingested_.load();
  c.documents_failed = documents_failed_.load();
  c.pages_ingested = pages_ingested_.load();
  c.chunks_ingested = chunks_ingested_.load();
  c.answers = answers_.load();
  c.prompt_tokens = prompt_tokens_.load();
  c.completion_tokens = completion_tokens_.load();
  c.generation_seconds = static_cast<double>(generation_us_.load()) / 1e6;
  return c;
}

PrefixCacheStats Assistant::prefix_cache_stats() const {
  return model_ ? model_->engine->prefix_cache_stats() : PrefixCacheStats{};
}

int64_t Assistant::preemptions() const { return model_ ? model_->engine->preemptions() : 0; }

void Assistant::IndexDocument(int64_t id, const std::vector<int64_t>& removed_chunk_ids) {
  if (!dense_) return;
  // The vectors are derived data: a failure here leaves the document stored and found by BM25,
  // and the next start embeds what the index lacks and drops what the store no longer has.
  if (Status st = dense_->AddDocument(id); !st.ok()) {
    RAG_LOG(WARN) << "dense index: document id=" << id << " not embedded: " << st.message();
  }
  if (removed_chunk_ids.empty()) return;
  if (Status st = dense_->RemoveChunks(removed_chunk_ids); !st.ok()) {
    RAG_LOG(WARN) << "dense index: vectors of the replaced version of document id=" << id
                  << " not removed: " << st.message();
  }
}

StatusOr<AddResult> Assistant::IngestPath(const std::string& path, const std::string& collection,
                                          const IngestProgressFn& progress) {
  const std::string filename = BaseName(path);
  if (!IsSupportedFileName(filename)) {
    return Unsupported(path + ": unsupported file type (supported: .pdf .txt .md .html)");
  }
  RAG_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  if (bytes.empty()) return InvalidArgument(path + ": the file is empty");
  std::error_code ec;
  const std::string absolute = std::filesystem::absolute(path, ec).lexically_normal().string();
  NewDocument doc;
  doc.collection = collection;
  doc.content_hash = Sha256Hex(bytes);
  doc.filename = filename;
  doc.source_path = absolute;
  doc.bytes = static_cast<int64_t>(bytes.size());
  AddResult result;
  RAG_ASSIGN_OR_RETURN(result.document, store_->CreateDocument(doc, &result.duplicate));
  if (result.duplicate && result.document.status == "ready") return result;
  // New, or left unfinished (or failed) by an earlier run: (re)process it now. A changed file
  // replaces its old versions (StoreChunks deletes them, and reports their chunks, whose vectors
  // go too: every version, also when a killed run left a newer one queued).
  RAG_ASSIGN_OR_RETURN(IngestStats stats, IngestDocument(*store_, result.document.id, bytes, filename,
                                                         options_.chunking, progress));
  IndexDocument(result.document.id, stats.removed_chunk_ids);
  RAG_ASSIGN_OR_RETURN(result.document, store_->GetDocument(result.document.id));
  result.duplicate = false;
  return result;
}

StatusOr<std::vector<DocumentRecord>> Assistant::PendingDocuments() {
  return store_->ListDocumentsWithStatus({"queued", "processing"});
}

Status Assistant::DeleteDocument(int64_t id) {
  RAG_ASSIGN_OR_RETURN(DocumentRecord doc, store_->GetDocument(id));
  std::vector<int64_t> chunk_ids;
  if (dense_) {
    RAG_ASSIGN_OR_RETURN(std::vector<ChunkRecord> chunks, store_->GetDocumentChunks(id));
    for (const ChunkRecord& c : chunks) chunk_ids.push_back(c.id);
  }
  RAG_RETURN_IF_ERROR(store_->DeleteDocument(id));
  // After the store: a crash in between leaves vectors of deleted chunks, which the next start
  // finds (the index holds more than the store) and rebuilds away.
  if (dense_) RAG_RETURN_IF_ERROR(dense_->RemoveChunks(chunk_ids));
  // The saved upload goes too, unless another collection holds the same bytes.
  RAG_ASSIGN_OR_RETURN(const bool shared, store_->HasContentHash(doc.content_hash));
  if (!shared) {
    std::error_code ec;
    std::filesystem::remove(StoredFilePath(doc.content_hash), ec);
  }
  RAG_LOG(INFO) << "delete: document id=" << id << " file=" << doc.filename;
  return Status::Ok();
}

StatusOr<std::vector<Passage>> Assistant::Retrieve(const QueryRequest& request) {
  if (IsBlank(request.question)) return InvalidArgument("the question is empty");
  if (request.question.size() > kMaxQuestionBytes) {
    return InvalidArgument("the question is longer than " + std::to_string(kMaxQuestionBytes) + " bytes");
  }
  if (request.top_k < 1 || request.top_k > 50) return InvalidArgument("top_k must be between 1 and 50");
  SearchFilter filter;
  filter.collection = request.collection;
  filter.document_id = request.document_id;
  filter.collections = request.allowed_collections;
  // A chunk that mostly repeats a better one (more than half of the smaller shared, e.g. a
  // short last chunk inside its neighbour's overlap) adds nothing: fetch extra hits and keep
  // the top_k that are not such near-duplicates. Ordinary neighbours share less and stay.
  RAG_ASSIGN_OR_RETURN(auto hits, store_->SearchBm25(BuildFtsQuery(request.question), filter,
                                                     request.top_k * 3));
  if (dense_) {
    RAG_ASSIGN_OR_RETURN(hits, FuseWithDense(request, filter, std::move(hits)));
  }
  // Likewise a passage whose words mostly repeat a better one's wherever it is stored (the same
  // paragraph in two documents: retrieval/near_duplicate.h).
  std::vector<Passage> passages;
  std::vector<TextShingles> kept_words;
  passages.reserve(request.top_k);
  for (auto& h : hits) {
    if (static_cast<int>(passages.size()) == request.top_k) break;
    bool overlaps = false;
    for (const auto& kept : passages) {
      const ChunkRecord& k = kept.chunk;
      if (k.document_id != h.chunk.document_id || k.page != h.chunk.page) continue;
      const int64_t shared = std::min(k.end, h.chunk.end) - std::max(k.start, h.chunk.start);
      const int64_t smaller = std::min(k.end - k.start, h.chunk.end - h.chunk.start);
      overlaps = overlaps || (shared > 0 && 2 * shared > smaller);
    }
    if (overlaps) continue;
    TextShingles words(h.chunk.text);
    bool repeats = false;
    for (const TextShingles& k : kept_words) {
      repeats = repeats || k.Jaccard(words) >= kNearDuplicateJaccard;
    }
    if (repeats) continue;
    kept_words.push_back(std::move(words));
    Passage p;
    p.index = static_cast<int>(passages.size());
    p.chunk = std::move(h.chunk);
    p.score = h.score;
    passages.push_back(std::move(p));
  }
  return passages;
}

namespace {

bool MatchesFilter(const ChunkRecord& c, const SearchFilter& f) {
  if (f.collection && c.collection != *f.collection) return false;
  if (f.document_id && c.document_id != *f.document_id) return false;
  if (!f.collections.empty() &&
      std::find(f.collections.begin(), f.collections.end(), c.collection) == f.collections.end()) {
    return false;
  }
  return true;
}

}  // namespace

// Reciprocal rank fusion of the BM25 hits and the dense index's (retrieval/rank_fusion.h):
// ranks, not scores, since BM25 scores and cosines do not compare; the fused score replaces
// the BM25 score. BM25 counts half: on questions worded unlike their answers it is the weaker
// ranker by far (two question sets, docs/BENCHMARKS.md: recall@5 0.75 / 0.78 against the dense
// half's 0.88 / 0.92), and at equal weight its misses pushed good dense hits down; at half
// weight it still adds what only exact terms find (names, identifiers) and breaks ties.
StatusOr<std::vector<SearchHit>> Assistant::FuseWithDense(const QueryRequest& request,
                                                          const SearchFilter& filter,
                                                          std::vector<SearchHit> bm25) {
  // Dense candidates: as many as BM25's, more when a filter will drop some (the filter is
  // applied to the chunk records afterwards, not per vector inside FAISS, where a database
  // lookup per visited vector would cost more than the over-fetch).
  const bool filtered = filter.collection || filter.document_id || !filter.collections.empty();
  const int want = request.top_k * 3 * (filtered ? 8 : 1);
  RAG_ASSIGN_OR_RETURN(std::vector<VectorHit> dense, dense_->Search(request.question, want));
  std::vector<int64_t> dense_ids;
  for (const VectorHit& h : dense) dense_ids.push_back(h.id);
  RAG_ASSIGN_OR_RETURN(std::vector<ChunkRecord> dense_chunks, store_->GetChunks(dense_ids));
  std::unordered_map<int64_t, ChunkRecord> records;
  for (SearchHit& h : bm25) records.emplace(h.chunk.id, std::move(h.chunk));
  std::vector<int64_t> dense_kept;
  for (ChunkRecord& c : dense_chunks) {
    if (!MatchesFilter(c, filter)) continue;
    dense_kept.push_back(c.id);
    records.emplace(c.id, std::move(c));
  }
  // GetChunks returns its records in id order: restore the dense ranking.
  std::unordered_map<int64_t, size_t> dense_rank;
  for (size_t r = 0; r < dense_ids.size(); ++r) dense_rank.emplace(dense_ids[r], r);
  std::sort(dense_kept.begin(), dense_kept.end(),
            [&](int64_t a, int64_t b) { return dense_rank[a] < dense_rank[b]; });
  std::vector<int64_t> bm25_ids;
  for (const SearchHit& h : bm25) bm25_ids.push_back(h.chunk.id);
  std::vector<SearchHit> fused;
  for (const auto& [id, score] :
       ReciprocalRankFusion({bm25_ids, dense_kept}, kRrfK, {kBm25FusionWeight, 1.0})) {
    auto it = records.find(id);
    if (it == records.end()) continue;
    SearchHit h;
    h.chunk = std::move(it->second);
    h.score = score;
    fused.push_back(std::move(h));
  }
  return fused;
}

namespace {

// The ChatML prompt of messages (the grounded one of DESIGN.md section 4, or a conversation).
// Tokenizers without <|begin_of_text|> (SmolLM2 and other ChatML models) get the same layout
// without it; their message contents are encoded with special tokens as text, as ChatTemplate
// does, so a passage or a message cannot end its turn.
StatusOr<std::vector<int32_t>> EncodeChatPrompt(const Tokenizer& tok, const std::optional<ChatTemplate>& chat,
                                                int32_t im_start, int32_t im_end,
                                                const std::vector<ChatMessage>& messages) {
  if (chat) return chat->Encode(messages, /*add_generation_prompt=*/true);
  std::vector<int32_t> ids;
  auto append = [&](const std::string& text) -> Status {
    RAG_ASSIGN_OR_RETURN(std::vector<int32_t> part, tok.Encode(text, Tokenizer::Special::kAsText));
    ids.insert(ids.end(), part.begin(), part.end());
    return Status::Ok();
  };
  for (const ChatMessage& m : messages) {
    ids.push_back(im_start);
    RAG_RETURN_IF_ERROR(append(m.role + "\n" + m.content));
    ids.push_back(im_end);
    RAG_RETURN_IF_ERROR(append("\n"));
  }
  ids.push_back(im_start);
  RAG_RETURN_IF_ERROR(append("assistant\n"));
  return ids;
}

}  // namespace

Status Assistant::Generate(const QueryRequest& request, const std::vector<Passage>& passages,
                           const QueryEventFn& on_event, std::string* text, QueryResult* result) {
  Model& m = *model_;
  const ModelConfig& config = m.engine->config();
  std::vector<GroundingPassage> grounding;
  for (const Passage& p : passages) grounding.push_back({p.chunk.title, p.chunk.text});
  GenerationRequest g;
  g.max_tokens = request.max_answer_tokens > 0 ? request.max_answer_tokens : options_.max_answer_tokens;
  g.cache_scope = request.cache_scope;
  // The weakest passages go first when the prompt and the answer do not fit the context.
  for (;;) {
    RAG_ASSIGN_OR_RETURN(g.prompt, EncodeChatPrompt(*m.tokenizer, m.chat, *m.im_start, *m.im_end,
                                                    GroundedMessages(request.question, grounding)));
    const int64_t needed = static_cast<int64_t>(g.prompt.size()) + g.max_tokens;
    if (needed <= config.max_position_embeddings || grounding.size() <= 1) break;
    grounding.pop_back();
  }
  return RunGeneration(std::move(g), on_event, text, result);
}

StatusOr<QueryResult> Assistant::Chat(const std::vector<ChatMessage>& messages, int max_tokens,
                                      const SamplingParams& sampling, const QueryEventFn& on_event,
                                      uint64_t cache_scope) {
  if (!model_) return FailedPrecondition("no model is loaded: chat needs one (rag serve --model)");
  if (messages.empty()) return InvalidArgument("messages must not be empty");
  for (const ChatMessage& msg : messages) {
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant") {
      return InvalidArgument("message role \"" + msg.role + "\" (system, user or assistant)");
    }
  }
  RAG_RETURN_IF_ERROR(ValidateSamplingParams(sampling));
  Model& m = *model_;
  const int64_t context = m.engine->config().max_position_embeddings;
  GenerationRequest g;
  g.max_tokens = max_tokens;
  g.sampling = sampling;
  g.cache_scope = cache_scope;
  RAG_ASSIGN_OR_RETURN(g.prompt, EncodeChatPrompt(*m.tokenizer, m.chat, *m.im_start, *m.im_end, messages));
  if (static_cast<int64_t>(g.prompt.size()) + max_tokens > context) {
    return InvalidArgument("the conversation (" + std::to_string(g.prompt.size()) + " tokens) and " +
                           std::to_string(max_tokens) + " new tokens exceed the model's context of " +
                           std::to_string(context));
  }
  const auto t0 = std::chrono::steady_clock::now();
  QueryResult result;
  result.mode = "model";
  result.model = m.name;
  std::string text;
  RAG_RETURN_IF_ERROR(RunGeneration(std::move(g), on_event, &text, &result));
  result.answer.answer = std::move(text);
  result.answer_ms = MillisSince(t0);
  return result;
}

Status Assistant::RunGeneration(GenerationRequest g, const QueryEventFn& on_event, std::string* text,
                                QueryResult* result) {
  Model& m = *model_;
  const ModelConfig& config = m.engine->config();
  ++generating_;
  const auto started = std::chrono::steady_clock::now();
  // On every way out: one answer fewer in flight, its tokens and time counted.
  struct Done {
    Assistant& a;
    const QueryResult& result;
    std::chrono::steady_clock::time_point started;
    ~Done() {
      --a.generating_;
      ++a.answers_;
      a.prompt_tokens_ += result.prompt_tokens;
      a.completion_tokens_ += result.completion_tokens;
      a.generation_us_ += std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
    }
  } done_guard{*this, *result, started};
  g.stop_token_ids = {*m.im_end};
  result->prompt_tokens = static_cast<int>(g.prompt.size());

  std::vector<int32_t> stops = config.eos_token_ids;
  stops.push_back(*m.im_end);
  auto stream = std::make_shared<GenerationStream>();
  auto decoder = std::make_shared<StreamingDecoder>(*m.tokenizer);  // engine thread only
  // Runs on the engine thread: decode, time and queue, nothing else (engine.h asks for quick
  // callbacks). The Assistant owns the engine, so its histograms outlive every callback.
  LatencyHistogram* first_token = &first_token_latency_;
  LatencyHistogram* token_gap = &token_gap_latency_;
  auto callback = [stream, decoder, stops, started, first_token, token_gap](const TokenEvent& e) {
    std::string piece;
    const bool is_stop = std::find(stops.begin(), stops.end(), e.token) != stops.end();
    const bool counted = e.token >= 0 && !is_stop;
    if (counted) piece = decoder->Feed(e.token);
    if (e.finished) piece += decoder->Flush();
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(stream->mu);
    if (counted) {
      const auto since = stream->tokens == 0 ? started : stream->last_token;
      (stream->tokens == 0 ? first_token : token_gap)
          ->Observe(std::chrono::duration<double>(now - since).count());
      stream->last_token = now;
      ++stream->tokens;
    }
    if (!piece.empty()) stream->pieces.push_back(std::move(piece));
    if (e.finished) {
      stream->done = true;
      stream->reason = e.reason;
      stream->error = e.error;
    }
    stream->cv.notify_all();
    return true;
  };
  RAG_ASSIGN_OR_RETURN(const int64_t id, m.engine->Submit(std::move(g), std::move(callback)));

  // Drains the queue on this thread until the request finishes. A consumer that stops
  // (on_event false) cancels the request but still waits for its last event, so that nothing
  // of this request is left in the engine when we return.
  bool cancelled = false;
  std::unique_lock<std::mutex> lock(stream->mu);
  for (;;) {
    stream->cv.wait(lock, [&] { return stream->done || !stream->pieces.empty(); });
    std::deque<std::string> pieces;
    pieces.swap(stream->pieces);
    const bool done = stream->done;
    lock.unlock();  // events and Cancel run without the queue's lock (Cancel takes the engine's)
    for (std::string& piece : pieces) {
      text->append(piece);
      if (!on_event || cancelled) continue;
      QueryEvent e;
      e.text = std::move(piece);
      if (!on_event(e)) {
        cancelled = true;
        m.engine->Cancel(id);
      }
    }
    lock.lock();
    if (done) break;
  }
  result->completion_tokens = stream->tokens;
  result->finish_reason = FinishReasonName(stream->reason);
  if (cancelled) return Unavailable("the request was cancelled");
  if (stream->reason == FinishReason::kError) return stream->error;
  return Status::Ok();
}

StatusOr<QueryResult> Assistant::Query(const QueryRequest& request) {
  return QueryStream(request, nullptr);
}

StatusOr<QueryResult> Assistant::QueryStream(const QueryRequest& request, const QueryEventFn& on_event) {
  const auto t0 = std::chrono::steady_clock::now();
  RAG_ASSIGN_OR_RETURN(std::vector<Passage> passages, Retrieve(request));
  const double retrieve_ms = MillisSince(t0);
  if (on_event) {
    QueryEvent e;
    e.kind = QueryEvent::Kind::kPassages;
    e.passages = &passages;
    if (!on_event(e)) return Unavailable("the request was cancelled");
  }
  RAG_ASSIGN_OR_RETURN(QueryResult result, Answer(request, std::move(passages), on_event));
  result.retrieve_ms = retrieve_ms;
  return result;
}

StatusOr<QueryResult> Assistant::Answer(const QueryRequest& request, std::vector<Passage> passages,
                                        const QueryEventFn& on_event) {
  QueryResult result;
  result.mode = mode_;
  result.model = model_name();
  result.passages = std::move(passages);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<std::string> texts;
  for (const auto& p : result.passages) texts.push_back(p.chunk.text);
  std::string tagged;
  if (model_ && !result.passages.empty()) {
    RAG_RETURN_IF_ERROR(Generate(request, result.passages, on_event, &tagged, &result));
  } else if (!model_) {
    tagged = ExtractiveAnswer(request.question, texts);
  }
  ParsedAnswer parsed = ParseCitations(tagged, static_cast<int>(texts.size()));
  if (IsBlank(parsed.answer)) {
    // Nothing to verify: the fixed sentence is not a claim about the documents.
    result.answer.answer = kNoAnswer;
  } else {
    result.answer = AttributeAnswer(parsed, texts, options_.attribution);
  }
  if (on_event && !model_) {
    for (std::string& piece : SplitForStreaming(result.answer.answer, 24)) {
      QueryEvent e;
      e.text = std::move(piece);
      if (!on_event(e)) return Unavailable("the request was cancelled");
    }
  } else if (on_event && tagged.empty()) {
    QueryEvent e;
    e.text = result.answer.answer;
    if (!on_event(e)) return Unavailable("the request was cancelled");
  }
  result.answer_ms = MillisSince(t1);
  if (on_event) {
    QueryEvent e;
    e.kind = QueryEvent::Kind::kResult;
    e.result = &result;
    on_event(e);
  }
  return result;
}

}  // namespace rag
