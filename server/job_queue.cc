#include "server/job_queue.h"

#include <ctime>
#include <exception>
#include <utility>

#include "common/logging.h"
#include "server/assistant.h"

namespace rag {

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
  }
  return "failed";
}

std::string NowIso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

JobQueue::JobQueue(ProcessFn process, JobQueueOptions options)
    : process_(std::move(process)), options_(options) {}

JobQueue::JobQueue(Assistant& assistant, JobQueueOptions options)
    : JobQueue(
          [&assistant](int64_t id, const IngestProgressFn& progress) {
            return assistant.ProcessDocument(id, progress).status();
          },
          options) {}

JobQueue::~JobQueue() { Shutdown(); }

void JobQueue::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  const int n = options_.workers < 1 ? 1 : options_.workers;
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

StatusOr<JobRecord> JobQueue::Submit(int64_t document_id, const std::string& filename) {
  return Enqueue(document_id, filename, /*bounded=*/true);
}

StatusOr<JobRecord> JobQueue::Resume(int64_t document_id, const std::string& filename) {
  return Enqueue(document_id, filename, /*bounded=*/false);
}

bool JobQueue::HasRoom() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !stopping_ && pending_.size() < options_.capacity;
}

StatusOr<JobRecord> JobQueue::Enqueue(int64_t document_id, const std::string& filename,
                                      bool bounded) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return Unavailable("the server is shutting down; try again later");
  if (bounded && pending_.size() >= options_.capacity) {
    return ResourceExhausted("the ingestion queue is full (" + std::to_string(options_.capacity) +
                             " documents waiting); try again later");
  }
  JobRecord job;
  job.id = "j-" + std::to_string(next_id_++);
  job.document_id = document_id;
  job.filename = filename;
  job.created_at = NowIso8601();
  jobs_[job.id] = job;
  pending_.push_back(job.id);
  cv_.notify_one();
  return job;
}

std::optional<JobRecord> JobQueue::Get(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

std::optional<JobRecord> JobQueue::ActiveJobFor(int64_t document_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, job] : jobs_) {
    if (job.document_id == document_id &&
        (job.state == JobState::kQueued || job.state == JobState::kRunning)) {
      return job;
    }
  }
  return std::nullopt;
}

Status JobQueue::CancelForDocument(int64_t document_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, job] : jobs_) {
    if (job.document_id != document_id) continue;
    if (job.state == JobState::kRunning) {
      return FailedPrecondition("document " + std::to_string(document_id) +
                                " is being processed (job " + id +
                                "); delete it when the job has finished");
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    JobRecord& job = jobs_[*it];
    if (job.document_id != document_id) {
      ++it;
      continue;
    }
    job.state = JobState::kFailed;
    job.error = "cancelled: document deleted";
    job.finished_at = NowIso8601();
    finished_.push_back(job.id);
    it = pending_.erase(it);
  }
  while (finished_.size() > options_.keep_finished) {
    jobs_.erase(finished_.front());
    finished_.pop_front();
  }
  return Status::Ok();
}

size_t JobQueue::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

size_t JobQueue::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

void JobQueue::Shutdown() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (joined_) return;
    stopping_ = true;
    workers.swap(workers_);
    cv_.notify_all();
  }
  for (std::thread& t : workers) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (joined_) return;  // a concurrent Shutdown() got here first
  joined_ = true;
  if (!pending_.empty()) {
    RAG_LOG(INFO) << "jobs: " << pending_.size() << " queued document(s) left for the next start";
  }
}

void JobQueue::WorkerLoop() {
  for (;;) {
    std::string job_id;
    int64_t document_id = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;  // queued jobs stay queued in the database
      job_id = pending_.front();
      pending_.pop_front();
      JobRecord& job = jobs_[job_id];
      job.state = JobState::kRunning;
      document_id = job.document_id;
      ++running_;
    }
    auto progress = [this, &job_id](const IngestProgress& p) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(job_id);
      if (it != jobs_.end()) it->second.progress = p;
    };
    Status status;
    try {
      status = process_(document_id, progress);
    } catch (const std::exception& e) {
      status = Internal(std::string("ingestion threw: ") + e.what());
    } catch (...) {
      status = Internal("ingestion threw an unknown exception");
    }
    Finish(job_id, status);
  }
}

void JobQueue::Finish(const std::string& job_id, const Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  --running_;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  JobRecord& job = it->second;
  job.state = status.ok() ? JobState::kDone : JobState::kFailed;
  job.error = status.ok() ? "" : status.message();
  job.finished_at = NowIso8601();
  if (status.ok()) {
    RAG_LOG(INFO) << "jobs: " << job.id << " document " << job.document_id << " done ("
                  << job.progress.chunks_done << " chunks)";
  } else {
    RAG_LOG(WARN) << "jobs: " << job.id << " document " << job.document_id
                  << " failed: " << status.message();
  }
  finished_.push_back(job.id);
  while (finished_.size() > options_.keep_finished) {
    jobs_.erase(finished_.front());
    finished_.pop_front();
  }
}

StatusOr<int> ResumePendingDocuments(Assistant& assistant, JobQueue& queue) {
  RAG_ASSIGN_OR_RETURN(std::vector<DocumentRecord> pending, assistant.PendingDocuments());
  int n = 0;
  for (const DocumentRecord& doc : pending) {
    if (queue.ActiveJobFor(doc.id)) continue;
    RAG_ASSIGN_OR_RETURN(JobRecord job, queue.Resume(doc.id, doc.filename));
    RAG_LOG(INFO) << "jobs: document " << doc.id << " (" << doc.filename << ") left " << doc.status
                  << " by an earlier run, queued as " << job.id;
    ++n;
  }
  return n;
}

}  // namespace rag
