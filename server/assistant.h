// The document assistant behind both the `rag` command line and the HTTP server: one data
// directory (rag.db, files/), ingestion, retrieval and answers with citations.
//
// Thread-safety: every method may be called concurrently from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/chat_template.h"
#include "engine/citations.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "ingest/chunker.h"
#include "ingest/pipeline.h"
#include "retrieval/answer_attribution.h"
#include "retrieval/dense_index.h"
#include "retrieval/document_store.h"
#include "server/gpu_flags.h"
#include "server/metrics.h"

namespace rag {

struct AssistantOptions {
  std::string data_dir = "data";
  // ~200-word passages (~270 tokens): five of them plus the system prompt make the
  // ~2000-token RAG prompt of DESIGN.md, and on the FAQ dev set they retrieve better than
  // 100-160 words (docs/BENCHMARKS.md).
  ChunkOptions chunking{.target_words = 200, .overlap_words = 50, .max_words = 300};
  int64_t max_upload_bytes = 100ll << 20;  // 100 MB
  // A model directory or .gguf file; "" = no model (extractive answers only).
  std::string model_path;
  // "model" or "extractive"; "" = "model" when model_path is given, else "extractive".
  std::string mode;
  int max_answer_tokens = 300;  // generated tokens per answer at most
  int model_threads = 0;        // CPU threads of the backend; 0: one per core
  // A sentence-embedder directory for dense retrieval, fused with BM25 (retrieval/
  // dense_index.h); "" = BM25 only. The command line fills in the bundled default.
  std::string embedder_path;
  std::string device = "auto";  // cpu, cuda, or auto (cuda when a GPU is present)
  GpuFlags gpu;                 // --tp, --kv-cache, --gpu-memory (cuda only)
  AttributionOptions attribution;
};

// One retrieved passage as the API shows it; index is its Document:N number in the prompt.
struct Passage {
  int index = 0;
  ChunkRecord chunk;
  double score = 0;
};

struct QueryRequest {
  std::string question;
  int top_k = 5;                                  // 1..50
  std::optional<std::string> collection;          // only this collection
  std::optional<int64_t> document_id;             // only this document
  std::vector<std::string> allowed_collections;   // non-empty: the caller may see only these
  uint64_t cache_scope = 0;  // prefix-cache scope (GenerationRequest's): one per API key
  int max_answer_tokens = 0;  // model mode: at most this many answer tokens; 0: the server's
};

struct QueryResult {
  AttributedAnswer answer;  // verified citations and unsupported sentences
  std::vector<Passage> passages;
  std::string mode;   // "model" or "extractive"
  std::string model;  // the model's name in model mode, else ""
  std::string finish_reason;  // model mode: "stop", "length", "cancelled"
  int prompt_tokens = 0;
  int completion_tokens = 0;
  double retrieve_ms = 0;
  double answer_ms = 0;
};

// Events of a streamed answer, in this order: kPassages once, kToken any number of times (the
// raw answer text in pieces: in model mode the model's output, <co:N> tags included), kResult
// once on success. `passages`/`result` point at data valid during the call only.
struct QueryEvent {
  enum class Kind { kPassages, kToken, kResult };
  Kind kind = Kind::kToken;
  const std::vector<Passage>* passages = nullptr;
  std::string text;
  const QueryResult* result = nullptr;
};
// Returns false to stop (e.g. the client hung up): generation is cancelled, no further events.
using QueryEventFn = std::function<bool(const QueryEvent&)>;

struct AddResult {
  DocumentRecord document;
  bool duplicate = false;  // the same content was already in the collection
};

class Assistant {
 public:
  // Creates the data directory when missing and opens (or creates) its database.
  static StatusOr<std::unique_ptr<Assistant>> Open(const AssistantOptions& options);
  ~Assistant();

  DocumentStore& store() { return *store_; }
  // The dense index (null when retrieval is BM25 only).
  DenseIndex* dense() { return dense_.get(); }
  const AssistantOptions& options() const { return options_; }

  // Saves an uploaded file durably under files/ (by content hash) and creates its queued
  // document row; once this returns ok, the document survives a crash (the next start resumes
  // it). Duplicates (same bytes in the same collection) return the stored document.
  // InvalidArgument for an unsupported file name or an empty file, ResourceExhausted when over
  // max_upload_bytes.
  StatusOr<AddResult> AddUpload(std::string_view bytes, const std::string& filename,
                                const std::string& collection);

  // Runs the ingest pipeline on a queued document's saved file (processing -> ready | failed).
  StatusOr<IngestStats> ProcessDocument(int64_t id, const IngestProgressFn& progress = nullptr);

  // `rag ingest` of one file on disk, synchronously. A file whose bytes are already stored is
  // skipped (duplicate); a changed file at a path stored before replaces the old version.
  StatusOr<AddResult> IngestPath(const std::string& path, const std::string& collection,
                                 const IngestProgressFn& progress = nullptr);

  // The original bytes of a document: its saved upload under files/, or for a document of
  // `rag ingest` the file it was read from, if that still has the same content (hash).
  // NotFound when neither is available.
  StatusOr<std::string> ReadOriginal(const DocumentRecord& doc) const;

  // Documents left queued or processing by an earlier run (a crash or a kill), oldest first.
  StatusOr<std::vector<DocumentRecord>> PendingDocuments();

  // Deletes the document, its chunks and its saved file (when no other document shares it).
  Status DeleteDocument(int64_t id);

  // Top passages for a question, best first, indices 0..n-1: BM25 hits fused with the dense
  // index's when there is one, filtered by the request's collection, document and allowed
  // collections before near-duplicates are merged. The retrieval of Query, alone (`rag
  // retrieve`, POST /v1/retrieve). InvalidArgument for an empty or over-long question or a bad
  // top_k.
  StatusOr<std::vector<Passage>> Retrieve(const QueryRequest& request);

  // Retrieve + answer with citations. InvalidArgument for an empty question or a bad top_k.
  StatusOr<QueryResult> Query(const QueryRequest& request);

  // Query with events (see QueryEvent). Every event is delivered on the calling thread (the
  // engine's callback only queues pieces), so an HTTP handler may write them to its own
  // connection; the call blocks that thread until the answer is complete. When on_event
  // returns false the request is cancelled in the engine and Unavailable is returned.
  StatusOr<QueryResult> QueryStream(const QueryRequest& request, const QueryEventFn& on_event);

  // The answer part of QueryStream for passages already retrieved (kPassages is not sent):
  // the HTTP route retrieves first, so that retrieval errors are ordinary JSON errors.
  StatusOr<QueryResult> Answer(const QueryRequest& request, std::vector<Passage> passages,
                               const QueryEventFn& on_event);

  // A conversation with the model, no retrieval (POST /v1/chat/completions without "rag"): the
  // messages through the model's chat template, then at most max_tokens tokens drawn with
  // `sampling`. The reply is result.answer.answer (no citations); kToken events as Answer's.
  // FailedPrecondition without a model; InvalidArgument for no messages, a role other than
  // system/user/assistant, bad sampling values or a conversation longer than the context.
  // cache_scope as QueryRequest's.
  StatusOr<QueryResult> Chat(const std::vector<ChatMessage>& messages, int max_tokens,
                             const SamplingParams& sampling, const QueryEventFn& on_event,
                             uint64_t cache_scope = 0);

  const std::string& mode() const { return mode_; }
  const std::string& model_name() const;  // "" without a model
  // Answers being generated by the engine right now (for /metrics and tests of cancellation).
  int generating() const { return generating_.load(); }

  // Running totals since the assistant opened (GET /metrics).
  struct Counters {
    int64_t documents_ingested = 0, documents_failed = 0, pages_ingested = 0, chunks_ingested = 0;
    int64_t answers = 0, prompt_tokens = 0, completion_tokens = 0;
    double generation_seconds = 0;  // summed over answers, prompt processing included
  };
  Counters counters() const;
  // The engine's prefix cache (model mode; zeros in extractive mode).
  PrefixCacheStats prefix_cache_stats() const;
  // Answers the engine set back to recompute later, its KV cache being full (zero in
  // extractive mode).
  int64_t preemptions() const;
  // Of the model's answers (GET /metrics): from the prompt reaching the engine to the first token
  // a reader sees (retrieval before it not included), and between two consecutive such tokens
  // (longer while other requests' prompts are read: `--step-tokens`).
  const LatencyHistogram& first_token_latency() const { return first_token_latency_; }
  const LatencyHistogram& token_gap_latency() const { return token_gap_latency_; }

 private:
  struct Model;  // tokenizer, chat template, engine (assistant.cc)

  Assistant(AssistantOptions options, std::unique_ptr<DocumentStore> store);
  std::string StoredFilePath(const std::string& content_hash) const;
  // Adds a document that just became ready to the dense index and removes the vectors of the
  // chunks its storing deleted (a failure is logged: the next start repairs the index).
  void IndexDocument(int64_t id, const std::vector<int64_t>& removed_chunk_ids);
  // BM25 hits fused with the dense index's, for one request.
  StatusOr<std::vector<SearchHit>> FuseWithDense(const QueryRequest& request, const SearchFilter& filter,
                                                 std::vector<SearchHit> bm25);
  // The model's tagged answer text; pieces go to on_event (if any) on the calling thread.
  Status Generate(const QueryRequest& request, const std::vector<Passage>& passages,
                  const QueryEventFn& on_event, std::string* text, QueryResult* result);
  // Runs g in the engine (stopping at <|im_end|> and the model's eos), appending the text to
  // *text and the token counts and finish reason to *result, counted in counters().
  Status RunGeneration(GenerationRequest g, const QueryEventFn& on_event, std::string* text,
                       QueryResult* result);

  AssistantOptions options_;
  std::unique_ptr<DocumentStore> store_;
  std::string mode_;
  std::unique_ptr<Model> model_;  // null in extractive mode
  std::unique_ptr<DenseIndex> dense_;  // null without an embedder (BM25 only)
  std::atomic<int> generating_{0};
  std::atomic<int64_t> documents_ingested_{0}, documents_failed_{0}, pages_ingested_{0},
      chunks_ingested_{0}, answers_{0}, prompt_tokens_{0}, completion_tokens_{0},
      generation_us_{0};
  LatencyHistogram first_token_latency_{{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}};
  LatencyHistogram token_gap_latency_{{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5}};
};

}  // namespace rag
