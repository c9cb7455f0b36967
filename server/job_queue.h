// Ingestion jobs of the HTTP server: one uploaded document each, processed on the queue's own
// worker threads (never on HTTP threads).
//
// A job goes queued -> running -> done | failed. Job records live in memory only (the newest
// keep_finished finished ones are kept); the durable state is the document row in SQLite, whose
// status the ingest pipeline updates. A document still queued when the process stops stays
// "queued" in the database and is re-queued at the next start (ResumePendingDocuments); job ids
// ("j-1", "j-2", ...) are unique within one run of the process only.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "ingest/pipeline.h"

namespace rag {

class Assistant;

enum class JobState { kQueued, kRunning, kDone, kFailed };
// "queued", "running", "done", "failed".
const char* JobStateName(JobState state);

struct JobRecord {
  std::string id;  // "j-N"
  int64_t document_id = 0;
  std::string filename;
  JobState state = JobState::kQueued;
  std::string error;  // why it failed; "" otherwise
  IngestProgress progress;
  std::string created_at;   // ISO 8601 UTC, e.g. 2026-11-27T10:00:00Z
  std::string finished_at;  // "" until done or failed
};

struct JobQueueOptions {
  int workers = 1;              // ingestion threads (parsing and chunking are CPU-bound)
  size_t capacity = 256;        // queued jobs Submit accepts; Resume is not bounded
  size_t keep_finished = 1000;  // finished records kept for GET /v1/jobs/{id}
};

class JobQueue {
 public:
  // Processes one document and reports progress (called on a worker thread). The returned
  // Status decides done (ok) or failed (its message becomes the job's error).
  using ProcessFn = std::function<Status(int64_t document_id, const IngestProgressFn& progress)>;

  JobQueue(ProcessFn process, JobQueueOptions options);
  // Processes documents through Assistant::ProcessDocument; the assistant must outlive the queue.
  JobQueue(Assistant& assistant, JobQueueOptions options);
  // Shutdown().
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Starts the worker threads (once).
  void Start();

  // Queues a new document. ResourceExhausted when `capacity` jobs are already queued,
  // Unavailable after Shutdown().
  StatusOr<JobRecord> Submit(int64_t document_id, const std::string& filename);
  // Queues a document left pending by an earlier run, whatever the capacity.
  StatusOr<JobRecord> Resume(int64_t document_id, const std::string& filename);
  // Whether Submit would accept a job now (a hint: another thread may take the last slot).
  bool HasRoom() const;

  std::optional<JobRecord> Get(const std::string& job_id) const;
  // The queued or running job of a document, if any.
  std::optional<JobRecord> ActiveJobFor(int64_t document_id) const;

  // Prepares the deletion of a document: its queued job, if any, leaves the queue (and is
  // recorded as failed, "cancelled: document deleted"), so that no worker starts it.
  // FailedPrecondition while a worker is processing the document: the caller answers 409.
  Status CancelForDocument(int64_t document_id);

  size_t queued() const;
  size_t running() const;

  // Stops accepting jobs, waits for the running ones to finish and joins the workers. Jobs
  // still queued are dropped from memory; their documents stay queued in the database. Safe to
  // call more than once.
  void Shutdown();

 private:
  StatusOr<JobRecord> Enqueue(int64_t document_id, const std::string& filename, bool bounded);
  void WorkerLoop();
  void Finish(const std::string& job_id, const Status& status);

  const ProcessFn process_;
  const JobQueueOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  bool joined_ = false;  // Shutdown() has joined the workers
  int64_t next_id_ = 1;
  std::deque<std::string> pending_;        // queued job ids, oldest first
  std::map<std::string, JobRecord> jobs_;  // every record still kept, by id
  std::deque<std::string> finished_;       // finished ids, oldest first (for eviction)
  size_t running_ = 0;
  std::vector<std::thread> workers_;
};

// Re-queues the documents an earlier run left queued or processing (oldest first) and returns
// how many.
StatusOr<int> ResumePendingDocuments(Assistant& assistant, JobQueue& queue);

// Now as ISO 8601 UTC with seconds ("2026-11-27T10:00:00Z").
std::string NowIso8601();

}  // namespace rag
