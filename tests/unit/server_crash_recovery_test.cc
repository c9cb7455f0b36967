// The server after a crash or a full disk (docs/RELIABILITY.md; the scripted kills and the small
// file system are in tests/integration/crash_safety_test.py):
//  - an upload whose ingestion failed (the disk was full) is ingested again when its bytes are
//    uploaded again, instead of answering with the failed record for ever;
//  - temporary files of uploads that a killed server never finished are removed at the next
//    start, while those of another live process are kept;
//  - a full disk is 507 Insufficient Storage with its own error code, not 413 or 500.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/file_util.h"
#include "common/json_util.h"
#include "server/assistant.h"
#include "server/http_server.h"
#include "tests/testing/api_error.h"
#include "tests/testing/http_client.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

using namespace std::chrono_literals;
using testing::Do;
using testing::Multipart;
using testing::Response;
using testing::WaitForJob;

Response Upload(int port, const std::string& name, const std::string& bytes) {
  return Do(port, "POST", "/v1/documents", Multipart({{"file", name, bytes}}),
            {testing::MultipartContentType()});
}

std::unique_ptr<Assistant> OpenAssistant(const std::string& dir) {
  AssistantOptions options;
  options.data_dir = dir;
  auto assistant = Assistant::Open(options);
  EXPECT_TRUE(assistant.ok()) << assistant.status().ToString();
  return assistant.ok() ? std::move(*assistant) : nullptr;
}

std::unique_ptr<HttpServer> StartServer(Assistant& assistant) {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 2;
  auto server = HttpServer::Start(assistant, options);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(*server) : nullptr;
}

TEST(CrashRecovery, AFailedUploadIsIngestedAgainWhenUploadedAgain) {
  testing::TempDir data;
  std::unique_ptr<Assistant> assistant = OpenAssistant(data.path());
  ASSERT_TRUE(assistant);
  const std::string bytes = "The harbour board meets on the first Monday of every month.";
  // Accepted, then its ingestion failed for lack of room (as IngestDocument records it).
  auto added = assistant->AddUpload(bytes, "board.txt", "default");
  ASSERT_TRUE(added.ok());
  const int64_t id = added->document.id;
  ASSERT_TRUE(assistant->store().SetStatus(id, "failed", "disk full: step: database or disk is full").ok());

  std::unique_ptr<HttpServer> server = StartServer(*assistant);
  ASSERT_TRUE(server);
  const int port = server->port();
  // Failed documents are not resumed at start (only queued and processing ones are).
  EXPECT_EQ(Do(port, "GET", "/v1/documents/" + std::to_string(id)).json().value("status", ""), "failed");
  Response again = Upload(port, "board.txt", bytes);
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(again.json().value("document_id", 0), id);
  EXPECT_TRUE(again.json().value("duplicate", false));
  EXPECT_EQ(again.json()["document"].value("status", ""), "queued");
  EXPECT_FALSE(again.json()["document"].contains("error")) << again.body;
  const Json job = WaitForJob(port, again.json().value("job_id", ""));
  EXPECT_EQ(job.value("state", ""), "done") << job.dump();
  const Json doc = Do(port, "GET", "/v1/documents/" + std::to_string(id)).json();
  EXPECT_EQ(doc.value("status", ""), "ready") << doc.dump();
  // Once ready, the same bytes are an ordinary duplicate: 200, no job.
  Response dup = Upload(port, "board.txt", bytes);
  EXPECT_EQ(dup.status, 200) << dup.body;
  EXPECT_TRUE(dup.json()["job_id"].is_null());
  // A file that fails for good fails again, and stays one document.
  const std::string broken = "%PDF-1.4\nnot really a pdf";
  Response first = Upload(port, "broken.pdf", broken);
  ASSERT_EQ(first.status, 202);
  EXPECT_EQ(WaitForJob(port, first.json().value("job_id", "")).value("state", ""), "failed");
  Response retry = Upload(port, "broken.pdf", broken);
  ASSERT_EQ(retry.status, 202) << retry.body;
  EXPECT_EQ(retry.json().value("document_id", 0), first.json().value("document_id", -1));
  EXPECT_EQ(WaitForJob(port, retry.json().value("job_id", "")).value("state", ""), "failed");
  EXPECT_EQ(Do(port, "GET", "/v1/documents").json()["documents"].size(), 2u);
}

TEST(CrashRecovery, TemporaryFilesOfAKilledServerAreRemovedAtStart) {
  testing::TempDir data;
  { ASSERT_TRUE(OpenAssistant(data.path())); }
  // A writer that died mid-upload (a reaped child's pid), and one that is alive (our parent).
  const pid_t dead = ::fork();
  if (dead == 0) _exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string stale = data.file("files/" + std::string(64, 'a') + ".tmp." + std::to_string(dead) + ".0");
  const std::string live = data.file("files/" + std::string(64, 'b') + ".tmp." + std::to_string(::getppid()) + ".0");
  const std::string index = data.file("vectors.faiss.tmp." + std::to_string(dead) + ".4");
  for (const std::string& f : {stale, live, index}) std::ofstream(f) << "half written";
  std::unique_ptr<Assistant> assistant = OpenAssistant(data.path());
  ASSERT_TRUE(assistant);
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_FALSE(std::filesystem::exists(index));
  EXPECT_TRUE(std::filesystem::exists(live));
}

TEST(CrashRecovery, AFullDiskIs507InsufficientStorage) {
  const Status sqlite_full = ResourceExhausted("disk full: step: database or disk is full");
  const Status write_full = ResourceExhausted("disk full: write data/files/ab.tmp.1.0: No space left on device");
  const Status too_large = ResourceExhausted("report.pdf: the file is larger than the limit of 100 MB");
  EXPECT_EQ(HttpCodeFor(sqlite_full), 507);
  EXPECT_EQ(HttpCodeFor(write_full.WithPrefix("saving the vector index")), 507);
  EXPECT_EQ(HttpCodeFor(too_large), 413);
  const Json j = ErrorJson(write_full);
  EXPECT_EQ(j["error"].value("code", ""), "insufficient_storage");
  EXPECT_EQ(j["error"].value("type", ""), "server_error");
}

}  // namespace
}  // namespace rag
