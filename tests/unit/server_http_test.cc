// The real HTTP server (HttpServer, RunServer and `rag serve`) on loopback, driven by a small
// socket-level HTTP/1.1 client, so that malformed requests and hang-ups can be sent as well.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "common/json_util.h"
#include "server/assistant.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/web_assets.h"
#include "tests/testing/api_error.h"
#include "tests/testing/http_client.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

using namespace std::chrono_literals;
using testing::Client;
using testing::Do;
using testing::ExpectError;
using testing::FormPart;
using testing::Multipart;
using testing::ParseSse;
using testing::RawRequest;
using testing::Response;
using testing::SseEvent;

Response PostJson(int port, const Json& body) {
  return Do(port, "POST", "/v1/query", body.dump(), {"Content-Type: application/json"});
}

Response PostRetrieve(int port, const Json& body) {
  return Do(port, "POST", "/v1/retrieve", body.dump(), {"Content-Type: application/json"});
}

Response Upload(int port, const std::vector<FormPart>& parts) {
  return Do(port, "POST", "/v1/documents", Multipart(parts),
            {testing::MultipartContentType()});
}

Response UploadFile(int port, const std::string& filename, const std::string& data) {
  return Upload(port, {{"file", filename, data}});
}

// ---- The fixture: a fresh data directory and server per test. ----

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(ServerOptions{}); }

  void StartServer(ServerOptions options) {
    server_.reset();
    if (!assistant_) {
      AssistantOptions assistant_options;
      assistant_options.data_dir = data_.path();
      auto assistant = Assistant::Open(assistant_options);
      ASSERT_TRUE(assistant.ok()) << assistant.status().ToString();
      assistant_ = std::move(*assistant);
    }
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    auto server = HttpServer::Start(*assistant_, options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    port_ = server_->port();
    ASSERT_GT(port_, 0);
  }

  Json WaitForJob(const std::string& job_id) { return testing::WaitForJob(port_, job_id); }

  // Uploads a file and waits until its document is ready; returns the document id.
  int64_t AddDocument(const std::string& filename, const std::string& data) {
    Response r = UploadFile(port_, filename, data);
    EXPECT_EQ(r.status, 202) << r.body;
    const Json job = WaitForJob(r.json().value("job_id", ""));
    EXPECT_EQ(job.value("state", ""), "done") << job.dump();
    return r.json().value("document_id", int64_t{0});
  }

  void ExpectHealthy() {
    Response r = Do(port_, "GET", "/healthz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.json().value("status", ""), "ok");
  }

  testing::TempDir data_;
  std::unique_ptr<Assistant> assistant_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

const char kFerryNotes[] =
    "# Ferry notes\n\nThe island ferry departs from the north pier at seven o'clock every "
    "morning.\n\n"
    "Tickets for the zebrafinch excursion are sold at the kiosk near the lighthouse.\n";

TEST_F(HttpServerTest, UploadedPdfIsIngestedAndAnswersCiteItsPage) {
  auto pdf = ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/report.pdf");
  ASSERT_TRUE(pdf.ok()) << pdf.status().ToString();
  Response up = UploadFile(port_, "report.pdf", *pdf);
  ASSERT_EQ(up.status, 202) << up.body;
  const Json accepted = up.json();
  EXPECT_EQ(accepted["status"], "queued");
  EXPECT_EQ(accepted["duplicate"], false);
  EXPECT_EQ(accepted["document"]["filename"], "report.pdf");
  const int64_t id = accepted["document_id"];
  const std::string job_id = accepted["job_id"];
  EXPECT_EQ(job_id.rfind("j-", 0), 0u);

  const Json job = WaitForJob(job_id);
  EXPECT_EQ(job["state"], "done") << job.dump();
  EXPECT_EQ(job["document_id"], id);
  EXPECT_EQ(job["filename"], "report.pdf");
  EXPECT_EQ(job["progress"]["pages_done"], job["progress"]["pages_total"]);
  EXPECT_TRUE(job.contains("created_at") && job.contains("finished_at"));

  Response doc = Do(port_, "GET", "/v1/documents/" + std::to_string(id));
  ASSERT_EQ(doc.status, 200);
  EXPECT_EQ(doc.json()["status"], "ready");
  EXPECT_EQ(doc.json()["pages"], 4);

  Response q = PostJson(port_, {{"question", "When was the harbour lighthouse built?"}});
  ASSERT_EQ(q.status, 200) << q.body;
  const Json answer = q.json();
  EXPECT_NE(answer["answer"].get<std::string>().find("1887"), std::string::npos) << q.body;
  bool cited_page_two = false;
  for (const Json& c : answer["citations"]) {
    for (const Json& source : c["sources"]) {
      const Json& passage = answer["passages"][source.get<size_t>()];
      if (passage["document_id"] == id && passage["page"] == 2 &&
          c["text"].get<std::string>().find("1887") != std::string::npos) {
        cited_page_two = true;
      }
    }
  }
  EXPECT_TRUE(cited_page_two) << q.body;
}

// GET /metrics over real HTTP: Prometheus text whose every line is a comment or a sample, the
// requests of this test counted by route, method and status, latency histograms cumulative and
// closed by +Inf = _count, ingestion counted in documents and chunks.
TEST_F(HttpServerTest, MetricsCountRequestsIngestionAndLatencies) {
  AddDocument("ferry.md", kFerryNotes);
  ASSERT_EQ(PostJson(port_, {{"question", "When does the ferry depart?"}}).status, 200);
  ASSERT_EQ(Do(port_, "GET", "/no/such/route").status, 404);
  ASSERT_EQ(Do(port_, "GET", "/").status, 200);  // the web page
  ASSERT_EQ(Do(port_, "GET", "/metrics").status, 200);  // counted in the next scrape
  Response m = Do(port_, "GET", "/metrics");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  std::map<std::string, double> sample;
  std::istringstream lines(m.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    const size_t space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    ASSERT_EQ(sample.count(line.substr(0, space)), 0u) << "repeated series: " << line;
    sample[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  auto at = [&](const std::string& series) {
    EXPECT_EQ(sample.count(series), 1u) << series << " missing from\n" << m.body;
    return sample[series];
  };
  EXPECT_EQ(at("rag_http_requests_total{route=\"/v1/query\",method=\"POST\",code=\"200\"}"), 1);
  EXPECT_EQ(at("rag_http_requests_total{route=\"/v1/documents\",method=\"POST\",code=\"202\"}"), 1);
  EXPECT_GE(at("rag_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",code=\"200\"}"), 1);
  EXPECT_EQ(at("rag_http_requests_total{route=\"other\",method=\"GET\",code=\"404\"}"), 1);
  EXPECT_EQ(at("rag_http_requests_total{route=\"/metrics\",method=\"GET\",code=\"200\"}"), 1);
  EXPECT_EQ(at("rag_http_requests_total{route=\"static\",method=\"GET\",code=\"200\"}"), 1);
  double previous = 0;
  for (double le : HttpMetrics::Buckets()) {
    char bound[40];
    std::snprintf(bound, sizeof(bound), "%.17g", le);
    const double n = at(std::string("rag_http_request_duration_seconds_bucket{route=\"/v1/query\",le=\"") + bound + "\"}");
    EXPECT_GE(n, previous) << "le " << bound;
    previous = n;
  }
  EXPECT_EQ(at("rag_http_request_duration_seconds_bucket{route=\"/v1/query\",le=\"+Inf\"}"), 1);
  EXPECT_EQ(at("rag_http_request_duration_seconds_count{route=\"/v1/query\"}"), 1);
  EXPECT_GT(at("rag_http_request_duration_seconds_sum{route=\"/v1/query\"}"), 0);
  EXPECT_EQ(at("rag_ingest_documents_total"), 1);
  EXPECT_EQ(at("rag_ingest_failed_total"), 0);
  EXPECT_GT(at("rag_ingest_chunks_total"), 0);
  EXPECT_EQ(at("rag_ingest_queue_depth"), 0);
  EXPECT_EQ(at("rag_answers_total"), 0);  // extractive answers use no model
  EXPECT_EQ(at("rag_time_to_first_token_seconds_count"), 0);
  EXPECT_EQ(at("rag_time_between_tokens_seconds_bucket{le=\"+Inf\"}"), 0);
  EXPECT_EQ(Do(port_, "POST", "/metrics").status, 405);
}

// A histogram without labels in Prometheus' text: a value on a bound falls in that bound's
// bucket, the buckets are cumulative, +Inf holds everything, then the sum and the count.
TEST(LatencyHistogram, RendersCumulativeBucketsSumAndCount) {
  LatencyHistogram h({0.005, 0.1, 2.5});
  for (double v : {0.003, 0.005, 0.2, 7.0}) h.Observe(v);
  EXPECT_EQ(h.count(), 4u);
  std::string out;
  h.AppendTo(&out, "rag_x_seconds", "What x is.");
  EXPECT_EQ(out,
            "# HELP rag_x_seconds What x is.\n"
            "# TYPE rag_x_seconds histogram\n"
            "rag_x_seconds_bucket{le=\"0.0050000000000000001\"} 2\n"
            "rag_x_seconds_bucket{le=\"0.10000000000000001\"} 2\n"
            "rag_x_seconds_bucket{le=\"2.5\"} 3\n"
            "rag_x_seconds_bucket{le=\"+Inf\"} 4\n"
            "rag_x_seconds_sum 7.2080000000000002\n"
            "rag_x_seconds_count 4\n");
}

// The same notes stored in two collections are two documents with the same passage: a query
// over both gets that passage once (the better-ranked copy), not twice.
TEST_F(HttpServerTest, APassageStoredTwiceIsReturnedOnce) {
  AddDocument("ferry.md", kFerryNotes);
  Response other =
      Upload(port_, {{"file", "ferry.md", kFerryNotes}, {"collection", std::nullopt, "travel"}});
  ASSERT_EQ(other.status, 202) << other.body;
  ASSERT_EQ(WaitForJob(other.json().value("job_id", "")).value("state", ""), "done");
  Response both = PostJson(port_, {{"question", "When does the island ferry depart?"}});
  ASSERT_EQ(both.status, 200) << both.body;
  EXPECT_EQ(both.json()["passages"].size(), 1u) << both.body;
  // Each collection on its own still finds its copy.
  Response travel = PostJson(port_, {{"question", "When does the island ferry depart?"},
                                     {"collection", "travel"}});
  ASSERT_EQ(travel.status, 200) << travel.body;
  ASSERT_EQ(travel.json()["passages"].size(), 1u) << travel.body;
  EXPECT_EQ(travel.json()["passages"][0]["collection"], "travel");
}

Response Chat(int port, const Json& body) {
  return Do(port, "POST", "/v1/chat/completions", body.dump(), {"Content-Type: application/json"});
}

// The OpenAI-compatible routes without a model: /v1/models names the extractive answerer, a
// chat completion with "rag" is the extractive answer of POST /v1/query in OpenAI's shape (plus
// passages and citations), plain and streamed; a conversation without "rag" needs a model.
TEST_F(HttpServerTest, ChatCompletionsWithRagAnswerFromTheDocumentsInOpenAIsShape) {
  AddDocument("ferry.md", kFerryNotes);
  Response models = Do(port_, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.json()["object"], "list");
  ASSERT_EQ(models.json()["data"].size(), 1u);
  EXPECT_EQ(models.json()["data"][0]["id"], "extractive");
  EXPECT_EQ(models.json()["data"][0]["object"], "model");

  const Json messages = Json::array({{{"role", "system"}, {"content", "Answer briefly."}},
                                     {{"role", "user"}, {"content", "Who sells tickets?"}},
                                     {{"role", "assistant"}, {"content", "Which tickets?"}},
                                     {{"role", "user"}, {"content", "When does the island ferry depart?"}}});
  Response r = Chat(port_, {{"model", "extractive"}, {"messages", messages}, {"rag", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const Json c = r.json();
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["model"], "extractive");
  EXPECT_TRUE(c["id"].get<std::string>().rfind("chatcmpl-", 0) == 0) << r.body;
  ASSERT_EQ(c["choices"].size(), 1u);
  EXPECT_EQ(c["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 0);
  // The last user message is the question: the same answer as POST /v1/query gives it.
  Response q = PostJson(port_, {{"question", "When does the island ferry depart?"}});
  ASSERT_EQ(q.status, 200);
  EXPECT_EQ(c["choices"][0]["message"]["content"], q.json()["answer"]);
  EXPECT_NE(c["choices"][0]["message"]["content"].get<std::string>().find("seven"), std::string::npos);
  EXPECT_EQ(c["passages"], q.json()["passages"]);
  EXPECT_EQ(c["citations"], q.json()["citations"]);

  // Streamed: a role chunk, content chunks that concatenate to the answer, a last chunk with the
  // finish reason and the citations, then [DONE].
  Response s = Chat(port_, {{"messages", messages}, {"rag", {{"top_k", 3}}}, {"stream", true}});
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(s.header("content-type"), "text/event-stream; charset=utf-8");
  ASSERT_GE(s.body.size(), 14u);
  EXPECT_EQ(s.body.substr(s.body.size() - 14), "data: [DONE]\n\n");
  EXPECT_EQ(s.body.find("event:"), std::string::npos) << "OpenAI streams have unnamed events";
  std::vector<SseEvent> events = ParseSse(s.body);
  ASSERT_GE(events.size(), 4u) << s.body;
  events.pop_back();  // [DONE]
  EXPECT_EQ(events.front().data["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].data["object"], "chat.completion.chunk");
    EXPECT_TRUE(events[i].data["choices"][0]["finish_reason"].is_null());
    content += events[i].data["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(content, q.json()["answer"]);
  EXPECT_EQ(events.back().data["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(events.back().data["citations"], q.json()["citations"]);

  // Refusals, as JSON errors.
  ExpectError(Chat(port_, {{"messages", messages}}), 409, "no model");
  ExpectError(Chat(port_, {{"model", "gpt-4o"}, {"messages", messages}, {"rag", true}}), 404, "gpt-4o");
  ExpectError(Chat(port_, {{"messages", Json::array()}, {"rag", true}}), 400, "messages");
  ExpectError(Chat(port_, {{"messages", {{{"role", "tool"}, {"content", "x"}}}}, {"rag", true}}), 400, "role");
  ExpectError(Chat(port_, {{"messages", messages}, {"rag", true}, {"n", 2}}), 400, "n must be 1");
  ExpectError(Chat(port_, {{"messages", messages}, {"rag", true}, {"logit_bias", Json::object()}}), 400,
              "logit_bias");
  ExpectError(Chat(port_, {{"messages", {{{"role", "system"}, {"content", "x"}}}}, {"rag", true}}), 400,
              "user message");
  ExpectError(Chat(port_, {{"messages", messages}, {"rag", {{"top_k", 0}}}}), 400, "top_k");
  ExpectError(Do(port_, "GET", "/v1/chat/completions"), 405);
  ExpectHealthy();
}

// Without API keys the server listens on loopback only, unless told --insecure.
TEST(HttpServerBindTest, OtherAddressesThanLoopbackNeedInsecure) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "192.168.1.5", "::", "", "128.0.0.1", "127.0.0.256",
                           "127.0.0.1.example.com", "127.0.0", "localhost.example.com"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
  testing::TempDir data;
  AssistantOptions assistant_options;
  assistant_options.data_dir = data.path();
  auto assistant = Assistant::Open(assistant_options);
  ASSERT_TRUE(assistant.ok()) << assistant.status().ToString();
  ServerOptions options;
  options.host = "0.0.0.0";
  options.port = 0;
  auto refused = HttpServer::Start(**assistant, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("--insecure"), std::string::npos);
  options.insecure = true;
  auto started = HttpServer::Start(**assistant, options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(Do((*started)->port(), "GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, DuplicateUploadReturnsTheStoredDocument) {
  const int64_t id = AddDocument("ferry.md", kFerryNotes);
  Response again = UploadFile(port_, "copy-of-ferry.md", kFerryNotes);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json()["duplicate"], true);
  EXPECT_TRUE(again.json()["job_id"].is_null());
  EXPECT_EQ(again.json()["document_id"], id);
  EXPECT_EQ(again.json()["status"], "ready");
  // Another collection is another document.
  Response other =
      Upload(port_, {{"file", "ferry.md", kFerryNotes}, {"collection", std::nullopt, "travel"}});
  EXPECT_EQ(other.status, 202) << other.body;
  EXPECT_EQ(other.json()["document"]["collection"], "travel");
  Response listed = Do(port_, "GET", "/v1/documents?collection=travel");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.json()["documents"].size(), 1u);
  EXPECT_EQ(Do(port_, "GET", "/v1/documents").json()["documents"].size(), 2u);
}

TEST_F(HttpServerTest, DeletedDocumentIsGoneAndNoLongerRetrieved) {
  const int64_t id = AddDocument("ferry.md", kFerryNotes);
  const Json question = {{"question", "Where are zebrafinch excursion tickets sold?"}};
  Response before = PostJson(port_, question);
  ASSERT_EQ(before.status, 200);
  ASSERT_FALSE(before.json()["passages"].empty());
  EXPECT_EQ(before.json()["passages"][0]["document_id"], id);

  Response del = Do(port_, "DELETE", "/v1/documents/" + std::to_string(id));
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(del.json(), Json({{"deleted", true}, {"id", id}}));
  ExpectError(Do(port_, "GET", "/v1/documents/" + std::to_string(id)), 404);
  ExpectError(Do(port_, "DELETE", "/v1/documents/" + std::to_string(id)), 404);
  Response after = PostJson(port_, question);
  ASSERT_EQ(after.status, 200);
  const Json after_json = after.json();
  for (const Json& p : after_json["passages"]) EXPECT_NE(p["document_id"], id);
  EXPECT_TRUE(Do(port_, "GET", "/v1/documents").json()["documents"].empty());
}

TEST_F(HttpServerTest, DeleteRefusesARunningJobAndCancelsAQueuedOne) {
  // Big enough to keep the one ingestion worker busy for a while (hundreds of ms).
  std::string big;
  while (big.size() < (4u << 20)) {
    big += "Tide table entry " + std::to_string(big.size()) + " for the harbour.\n\n";
  }
  Response a = UploadFile(port_, "tides.txt", big);
  ASSERT_EQ(a.status, 202) << a.body;
  Response b = UploadFile(port_, "gulls.txt", "A short note about gulls.");
  ASSERT_EQ(b.status, 202) << b.body;
  const std::string a_path =
      "/v1/documents/" + std::to_string(a.json()["document_id"].get<int64_t>());
  const std::string b_path =
      "/v1/documents/" + std::to_string(b.json()["document_id"].get<int64_t>());

  // b waits behind a: deleting it cancels its job, which never runs.
  Response del_b = Do(port_, "DELETE", b_path);
  EXPECT_EQ(del_b.status, 200) << del_b.body;
  const Json b_job = Do(port_, "GET", "/v1/jobs/" + b.json()["job_id"].get<std::string>()).json();
  EXPECT_EQ(b_job["state"], "failed") << b_job.dump();
  EXPECT_EQ(b_job["error"], "cancelled: document deleted");

  // a is being processed: refused until its job has finished.
  const std::string a_job = a.json()["job_id"];
  if (Do(port_, "GET", "/v1/jobs/" + a_job).json()["state"] == "running") {
    ExpectError(Do(port_, "DELETE", a_path), 409, "being processed");
  } else {
    ADD_FAILURE() << "the big document was ingested too fast to test the 409";
  }
  EXPECT_EQ(WaitForJob(a_job)["state"], "done");
  EXPECT_EQ(Do(port_, "DELETE", a_path).status, 200);
  ExpectError(Do(port_, "GET", b_path), 404);
}

TEST_F(HttpServerTest, QueryRequestsAreStrict) {
  ExpectError(Do(port_, "POST", "/v1/query", "{\"question\": ", {"Content-Type: application/json"}),
              400, "malformed JSON");
  ExpectError(PostJson(port_, {{"question", "hi"}, {"colour", "red"}}), 400, "colour");
  ExpectError(PostJson(port_, {{"question", "  \t\n"}}), 400, "empty");
  ExpectError(PostJson(port_, Json::object()), 400, "question");
  ExpectError(PostJson(port_, {{"question", 42}}), 400, "question");
  ExpectError(PostJson(port_, {{"question", "hi"}, {"top_k", 0}}), 400, "top_k");
  ExpectError(PostJson(port_, {{"question", "hi"}, {"top_k", 51}}), 400, "top_k");
  ExpectError(PostJson(port_, {{"question", "hi"}, {"top_k", "5"}}), 400, "top_k");
  ExpectError(PostJson(port_, {{"question", "hi"}, {"stream", "yes"}}), 400, "stream");
  ExpectError(PostJson(port_, {{"question", "hi"}, {"collection", "../x"}}), 400, "collection");
  ExpectError(PostJson(port_, Json::array({1, 2})), 400);
  // curl -d labels a JSON body as a form: the label is accepted, a real form body is not JSON.
  ExpectError(Do(port_, "POST", "/v1/query", "question=hi",
                 {"Content-Type: application/x-www-form-urlencoded"}),
              400, "JSON");
  Response curl_style = Do(port_, "POST", "/v1/query", R"({"question": "anything?"})",
                           {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(curl_style.status, 200) << curl_style.body;
  ExpectError(Do(port_, "POST", "/v1/query", R"({"question": "anything?"})",
                 {"Content-Type: text/plain"}),
              415);
  ExpectError(Do(port_, "POST", "/v1/query", std::string(3, '[') + std::string((1 << 20) + 10, ' '),
                 {"Content-Type: application/json"}),
              413);
  Response ok = PostJson(port_, {{"question", "anything at all?"}, {"top_k", 50}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(ok.json()["passages"].is_array());
}

// POST /v1/retrieve: the passages /v1/query would answer from, ranked, filtered by collection
// and document, with no answer composed; counted in /metrics under its own route.
TEST_F(HttpServerTest, RetrieveReturnsRankedPassagesWithoutAnAnswer) {
  const int64_t ferry = AddDocument("ferry.md", kFerryNotes);
  Response up = Upload(port_, {{"file", "museum.md",
                                "# Harbour museum\n\nThe museum shows an old ferry ticket and a "
                                "model of the lighthouse.\n"},
                               {"collection", std::nullopt, "travel"}});
  ASSERT_EQ(up.status, 202) << up.body;
  ASSERT_EQ(WaitForJob(up.json().value("job_id", "")).value("state", ""), "done");
  const int64_t museum = up.json()["document_id"];

  const std::string question = "When does the island ferry depart?";
  Response r = PostRetrieve(port_, {{"question", question}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  const Json j = r.json();
  EXPECT_EQ(j.size(), 2u) << "only passages and timings: " << r.body;
  ASSERT_EQ(j["passages"].size(), 2u) << r.body;
  EXPECT_EQ(j["passages"][0]["document_id"], ferry) << r.body;
  EXPECT_EQ(j["passages"][1]["document_id"], museum) << r.body;
  EXPECT_GT(j["passages"][0]["score"].get<double>(), j["passages"][1]["score"].get<double>());
  for (size_t i = 0; i < j["passages"].size(); ++i) {
    const Json& p = j["passages"][i];
    EXPECT_EQ(p["index"], i);
    for (const char* field : {"chunk_id", "title", "filename", "collection", "page", "section",
                              "start", "end", "text"}) {
      EXPECT_TRUE(p.contains(field)) << field << " missing: " << r.body;
    }
  }
  EXPECT_NE(j["passages"][0]["text"].get<std::string>().find("seven o'clock"), std::string::npos);
  const double retrieve_ms = j["timings"]["retrieve_ms"], total_ms = j["timings"]["total_ms"];
  EXPECT_GE(retrieve_ms, 0);
  EXPECT_GE(total_ms, retrieve_ms);
  // Exactly the passages POST /v1/query answers from.
  Response q = PostJson(port_, {{"question", question}});
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_EQ(q.json()["passages"], j["passages"]);

  auto documents = [&](Json body) {
    body["question"] = question;
    Response f = PostRetrieve(port_, body);
    EXPECT_EQ(f.status, 200) << f.body;
    std::vector<int64_t> ids;
    for (const Json& p : f.json().value("passages", Json::array())) ids.push_back(p["document_id"]);
    return ids;
  };
  EXPECT_EQ(documents({{"top_k", 1}}), std::vector<int64_t>{ferry});
  EXPECT_EQ(documents({{"collection", "travel"}}), std::vector<int64_t>{museum});
  EXPECT_EQ(documents({{"collection", "default"}}), std::vector<int64_t>{ferry});
  EXPECT_EQ(documents({{"document_id", museum}}), std::vector<int64_t>{museum});
  EXPECT_EQ(documents({{"collection", "travel"}, {"document_id", ferry}}), std::vector<int64_t>{});
  EXPECT_EQ(documents({{"collection", "nowhere"}}), std::vector<int64_t>{});
  EXPECT_EQ(documents({{"document_id", 999999}}), std::vector<int64_t>{});
  // A question that matches nothing: an empty list, not an error.
  Response none = PostRetrieve(port_, {{"question", "xylophone quandary?"}});
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(none.json()["passages"], Json::array()) << none.body;

  Response m = Do(port_, "GET", "/metrics");
  EXPECT_NE(
      m.body.find("rag_http_requests_total{route=\"/v1/retrieve\",method=\"POST\",code=\"200\"} 9"),
      std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("rag_http_request_duration_seconds_count{route=\"/v1/retrieve\"} 9"),
            std::string::npos)
      << m.body;
}

// The same validation and limits as POST /v1/query, and no "stream".
TEST_F(HttpServerTest, RetrieveRequestsAreStrict) {
  ExpectError(
      Do(port_, "POST", "/v1/retrieve", "{\"question\": ", {"Content-Type: application/json"}), 400,
      "malformed JSON");
  ExpectError(PostRetrieve(port_, {{"question", "hi"}, {"colour", "red"}}), 400, "colour");
  ExpectError(PostRetrieve(port_, {{"question", "hi"}, {"stream", true}}), 400, "stream");
  ExpectError(PostRetrieve(port_, {{"question", "  \t\n"}}), 400, "empty");
  ExpectError(PostRetrieve(port_, Json::object()), 400, "question");
  ExpectError(PostRetrieve(port_, {{"question", 42}}), 400, "question");
  ExpectError(PostRetrieve(port_, {{"question", std::string(8193, 'a')}}), 400, "longer");
  ExpectError(PostRetrieve(port_, {{"question", "hi"}, {"top_k", 0}}), 400, "top_k");
  ExpectError(PostRetrieve(port_, {{"question", "hi"}, {"top_k", 51}}), 400, "top_k");
  ExpectError(PostRetrieve(port_, {{"question", "hi"}, {"top_k", "5"}}), 400, "top_k");
  ExpectError(PostRetrieve(port_, {{"question", "hi"}, {"top_k", 2.5}}), 400, "top_k");
  ExpectError(PostRetrieve(port_, {{"question", "hi"}, {"collection", "../x"}}), 400, "collection");
  ExpectError(PostRetrieve(port_, {{"question", "hi"}, {"document_id", 0}}), 400, "document_id");
  ExpectError(PostRetrieve(port_, Json::array({1, 2})), 400);
  ExpectError(Do(port_, "POST", "/v1/retrieve", R"({"question": "anything?"})",
                 {"Content-Type: text/plain"}),
              415);
  ExpectError(
      Do(port_, "POST", "/v1/retrieve", std::string(3, '[') + std::string((1 << 20) + 10, ' '),
         {"Content-Type: application/json"}),
      413);
  for (const char* method : {"GET", "PUT", "DELETE"}) {
    Response wrong = Do(port_, method, "/v1/retrieve");
    ExpectError(wrong, 405, "not allowed");
    EXPECT_EQ(wrong.header("allow"), "POST");
  }
  Response curl_style = Do(port_, "POST", "/v1/retrieve", R"({"question": "anything?"})",
                           {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(curl_style.status, 200) << curl_style.body;
  Response ok = PostRetrieve(port_, {{"question", std::string(8192, 'a')}, {"top_k", 50}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(ok.json()["passages"].is_array());
  ExpectHealthy();
}

TEST_F(HttpServerTest, UploadRequestsAreStrict) {
  ExpectError(Do(port_, "POST", "/v1/documents", "{}", {"Content-Type: application/json"}), 415);
  ExpectError(Do(port_, "POST", "/v1/documents", "x"), 415);
  ExpectError(Upload(port_, {{"collection", std::nullopt, "docs"}}), 400, "file");
  ExpectError(Upload(port_, {{"file", std::nullopt, "no filename"}}), 400, "filename");
  ExpectError(Upload(port_, {{"file", "a.md", "x"}, {"collection", std::nullopt, "bad name!"}}),
              400, "collection");
  ExpectError(Upload(port_, {{"file", "a.md", "x"}, {"extra", std::nullopt, "1"}}), 400, "extra");
  ExpectError(Upload(port_, {{"file", "a.md", "x"}, {"file", "b.md", "y"}}), 400, "duplicate");
  ExpectError(UploadFile(port_, "program.exe", "MZ"), 415);
  ExpectError(UploadFile(port_, "empty.txt", ""), 400, "empty");
  ExpectError(Do(port_, "POST", "/v1/documents", "--nope\r\n",
                 {testing::MultipartContentType()}),
              400);
  ExpectError(Do(port_, "POST", "/v1/documents", Multipart({{"file", "a.md", "x"}}),
                 {"Content-Type: multipart/form-data"}),
              400, "boundary");
  // A path in the file name is reduced to its base name.
  Response up = UploadFile(port_, "../../etc/notes.txt", "plain notes about the sea");
  ASSERT_EQ(up.status, 202) << up.body;
  EXPECT_EQ(up.json()["document"]["filename"], "notes.txt");
  EXPECT_TRUE(Do(port_, "GET", "/v1/documents").json()["documents"].size() == 1);
}

TEST_F(HttpServerTest, OversizedUploadGets413AndTheServerCarriesOn) {
  ServerOptions options;
  options.max_body_bytes = 64 << 10;
  StartServer(options);
  const std::string big(200 << 10, 'a');
  // Declared up front: refused before the body is read, then the connection is closed.
  Client client(port_);
  ASSERT_TRUE(client.Send(RawRequest(
      "POST", "/v1/documents", "",
      {testing::MultipartContentType(),
       "Content-Length: " + std::to_string(Multipart({{"file", "big.txt", big}}).size())})));
  std::optional<Response> r = client.Read();
  ASSERT_TRUE(r);
  ExpectError(*r, 413, "limit");
  EXPECT_EQ(r->header("connection"), "Close");
  client.Send(big);  // the rest of the upload is discarded, not parsed as requests
  EXPECT_TRUE(client.ClosedByServer());
  // Sent whole, without waiting.
  ExpectError(UploadFile(port_, "big.txt", big), 413);
  EXPECT_EQ(UploadFile(port_, "small.txt", "small file about boats").status, 202);
  ExpectHealthy();
}

TEST_F(HttpServerTest, ExpectContinueIsAnswered) {
  Client client(port_);
  const std::string body = Multipart({{"file", "notes.txt", "continue with the upload"}});
  ASSERT_TRUE(client.Send(
      RawRequest("POST", "/v1/documents", "",
                 {testing::MultipartContentType(),
                  "Expect: 100-continue", "Content-Length: " + std::to_string(body.size())})));
  ASSERT_TRUE(client.ReadAtLeast(25));  // "HTTP/1.1 100 Continue\r\n\r\n" comes before the body
  ASSERT_TRUE(client.Send(body));
  std::optional<Response> r = client.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
}

TEST_F(HttpServerTest, FullQueueAnswers429WithRetryAfter) {
  ServerOptions options;
  options.job_queue_capacity = 0;
  StartServer(options);
  Response r = UploadFile(port_, "notes.txt", "queued notes");
  ExpectError(r, 429);
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_TRUE(Do(port_, "GET", "/v1/documents").json()["documents"].empty());
}

TEST_F(HttpServerTest, PendingDocumentsAreResumedAtStart) {
  server_.reset();
  auto added = assistant_->AddUpload(kFerryNotes, "ferry.md", "default");
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(added->document.status, "queued");
  StartServer(ServerOptions{});
  for (int i = 0; i < 500; ++i) {
    if (Do(port_, "GET", "/v1/documents/" + std::to_string(added->document.id)).json()["status"] ==
        "ready")
      break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(
      Do(port_, "GET", "/v1/documents/" + std::to_string(added->document.id)).json()["status"],
      "ready");
}

TEST_F(HttpServerTest, RoutesAndErrors) {
  ExpectError(Do(port_, "GET", "/v2/nothing"), 404, "no route");
  Response wrong = Do(port_, "PUT", "/v1/query", "{}");
  ExpectError(wrong, 405);
  EXPECT_EQ(wrong.header("allow"), "POST");
  ExpectError(Do(port_, "PATCH", "/v1/documents/1"), 405);
  ExpectError(Do(port_, "GET", "/v1/documents/abc"), 400, "positive integer");
  ExpectError(Do(port_, "GET", "/v1/documents/-3"), 400);
  ExpectError(Do(port_, "GET", "/v1/documents/99999999999999999999999"), 400);
  ExpectError(Do(port_, "GET", "/v1/documents/999"), 404);
  ExpectError(Do(port_, "GET", "/v1/documents?colour=red"), 400, "colour");
  ExpectError(Do(port_, "GET", "/v1/documents?collection=%zz"), 400);
  ExpectError(Do(port_, "GET", "/v1/jobs/j-12345"), 404);
  ExpectError(Do(port_, "GET", "/v1/documents/1/extra"), 404);
  Response health = Do(port_, "GET", "/healthz");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(health.json(), Json({{"status", "ok"},
                                 {"documents", 0},
                                 {"chunks", 0},
                                 {"jobs_queued", 0},
                                 {"jobs_running", 0}}));
}

TEST_F(HttpServerTest, ServesTheEmbeddedWebPage) {
  if (EmbeddedWebAssets().empty()) GTEST_SKIP() << "web/ was empty at build time";
  Response index = Do(port_, "GET", "/");
  ASSERT_EQ(index.status, 200);
  EXPECT_EQ(index.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(index.header("cache-control"), "no-cache");
  EXPECT_EQ(index.body, Do(port_, "GET", "/index.html").body);
  for (const WebAsset& asset : EmbeddedWebAssets()) {
    Response r = Do(port_, "GET", std::string("/") + asset.path);
    EXPECT_EQ(r.status, 200) << asset.path;
    EXPECT_EQ(r.body, std::string(reinterpret_cast<const char*>(asset.data), asset.size))
        << asset.path;
  }
  const std::map<std::string, std::string> types = {{"/app.js", "text/javascript; charset=utf-8"},
                                                    {"/style.css", "text/css; charset=utf-8"}};
  for (const auto& [path, type] : types) {
    Response r = Do(port_, "GET", path);
    if (r.status == 200) {
      EXPECT_EQ(r.header("content-type"), type) << path;
    }
  }
  ExpectError(Do(port_, "GET", "/../../etc/passwd"), 404);
  ExpectError(Do(port_, "GET", "/.hidden"), 404);
  ExpectError(Do(port_, "POST", "/", "x"), 405);
}

TEST_F(HttpServerTest, WebDirOverridesTheEmbeddedPage) {
  testing::TempDir web;
  std::ofstream(web.file("index.html")) << "<p>development copy</p>";
  ServerOptions options;
  options.web_dir = web.path();
  StartServer(options);
  Response r = Do(port_, "GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<p>development copy</p>");
  ExpectError(Do(port_, "GET", "/missing.js"), 404);
}

TEST_F(HttpServerTest, StreamingQuerySendsEventsInOrder) {
  AddDocument("ferry.md", kFerryNotes);
  const Json question = {{"question", "When does the island ferry depart?"}};
  Response plain = PostJson(port_, question);
  ASSERT_EQ(plain.status, 200);
  Json streamed_question = question;
  streamed_question["stream"] = true;
  Response r = PostJson(port_, streamed_question);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/event-stream; charset=utf-8");
  const std::vector<SseEvent> events = ParseSse(r.body);
  ASSERT_GE(events.size(), 4u) << r.body;
  EXPECT_EQ(events.front().event, "passages");
  EXPECT_EQ(events.front().data["passages"], plain.json()["passages"]);
  std::string text;
  size_t i = 1;
  for (; i < events.size() && events[i].event == "token"; ++i)
    text += events[i].data["text"].get<std::string>();
  EXPECT_GE(i, 3u) << "the answer comes in several pieces";
  EXPECT_EQ(text, plain.json()["answer"]);
  ASSERT_EQ(events.size(), i + 2) << r.body;
  EXPECT_EQ(events[i].event, "citations");
  EXPECT_EQ(events[i].data["citations"], plain.json()["citations"]);
  EXPECT_EQ(events[i + 1].event, "done");
  EXPECT_EQ(events[i + 1].data["answer"], plain.json()["answer"]);
  EXPECT_FALSE(events[i + 1].data.contains("passages"));
}

TEST_F(HttpServerTest, ClientsHangingUpMidStreamDoNotHurtTheServer) {
  AddDocument("ferry.md", kFerryNotes);
  const std::string request =
      RawRequest("POST", "/v1/query",
                 Json({{"question", "When does the ferry depart?"}, {"stream", true}}).dump(),
                 {"Content-Type: application/json"});
  std::atomic<int> complete{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 8; ++k) {
        Client client(port_);
        if (!client.Send(request)) continue;
        switch ((t + k) % 3) {
          case 0:  // reads the whole stream
            if (auto r = client.Read();
                r && !ParseSse(r->body).empty() && ParseSse(r->body).back().event == "done") {
              ++complete;
            }
            break;
          case 1:  // reads the first bytes, then resets the connection
            client.ReadAtLeast(64);
            client.Abort();
            break;
          default:  // hangs up before anything arrives
            client.Abort();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(complete.load(), 16);
  ExpectHealthy();
  Response after = PostJson(port_, {{"question", "When does the ferry depart?"}, {"stream", true}});
  const std::vector<SseEvent> events = ParseSse(after.body);
  ASSERT_FALSE(events.empty()) << after.body;
  EXPECT_EQ(events.back().event, "done");
}

TEST_F(HttpServerTest, MalformedAndHostileRequestsGetJsonErrors) {
  {
    Client c(port_);
    c.Send(std::string("\x00\x01\xff\xfe garbage \r\n\r\n", 17));
    auto r = c.Read();
    ASSERT_TRUE(r);
    ExpectError(*r, 400);
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    Client c(port_);
    c.Send("BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    ExpectError(*r, 400);
  }
  {
    Client c(port_);
    c.Send("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(100 << 10, 'h') + "\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    ExpectError(*r, 431);
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    Client c(port_);
    c.Send("POST /v1/query HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\n{}");
    auto r = c.Read();
    ASSERT_TRUE(r);
    ExpectError(*r, 400, "conflicting Content-Length");
  }
  {
    Client c(port_);
    c.Send("POST /v1/query HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    ExpectError(*r, 400, "Content-Length");
  }
  for (const char* length : {"1000000000000000", "99999999999999999999", "-1"}) {
    Client c(port_);
    c.Send(std::string("POST /v1/query HTTP/1.1\r\nContent-Length: ") + length + "\r\n\r\n{}");
    auto r = c.Read();
    ASSERT_TRUE(r) << length;
    ExpectError(*r, length[0] == '1' ? 413 : 400);
  }
  {  // Chunked bodies are read (and limited) too.
    Client c(port_);
    const std::string json = Json({{"question", "ferry?"}}).dump();
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", json.size());
    c.Send(std::string("POST /v1/query HTTP/1.1\r\nContent-Type: "
                       "application/json\r\nTransfer-Encoding: chunked\r\n\r\n") +
           size + "\r\n" + json + "\r\n0\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  {  // A slow client that sends half a request and leaves.
    Client c(port_);
    c.Send("POST /v1/query HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"quest");
    std::this_thread::sleep_for(50ms);
    c.Abort();
  }
  {  // HTTP/1.0 without keep-alive: answered, then closed.
    Client c(port_);
    c.Send("GET /healthz HTTP/1.0\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c.ClosedByServer());
  }
  {  // Keep-alive: several requests on one connection.
    Client c(port_);
    for (int i = 0; i < 3; ++i) {
      c.Send(RawRequest("GET", "/healthz", "", {}));
      auto r = c.Read();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
    }
  }
  ExpectHealthy();
}

TEST_F(HttpServerTest, AnAddressInUseIsUnavailable) {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = port_;
  auto second = HttpServer::Start(*assistant_, options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(std::to_string(port_)), std::string::npos);
  ExpectHealthy();
}

TEST_F(HttpServerTest, SlowClientsAreDisconnected) {
  ServerOptions options;
  options.header_timeout_s = 1;
  StartServer(options);
  Client slow(port_);
  ASSERT_TRUE(slow.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // and never the rest
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<Response> r = slow.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);  // Pistache's own answer (plain text)
  EXPECT_TRUE(slow.ClosedByServer());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  ExpectHealthy();
}

TEST_F(HttpServerTest, ShutdownWithIdleConnectionsIsQuick) {
  Client idle(port_);
  ASSERT_TRUE(idle.Send(RawRequest("GET", "/healthz", "", {})));
  ASSERT_TRUE(idle.Read());
  const auto t0 = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  server_->Shutdown();  // idempotent
}

TEST(RunServer, ReturnsOkOnSigterm) {
  testing::TempDir data;
  AssistantOptions assistant_options;
  assistant_options.data_dir = data.path();
  auto assistant = Assistant::Open(assistant_options);
  ASSERT_TRUE(assistant.ok());
  std::atomic<int> port{0};
  ServerOptions options;
  options.port = 0;
  options.on_listening = [&](int p) { port = p; };
  Status result = Internal("not returned");
  std::thread runner([&] { result = RunServer(**assistant, options); });
  for (int i = 0; i < 500 && port == 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_GT(port.load(), 0);
  EXPECT_EQ(Do(port, "GET", "/healthz").status, 200);
  ::kill(::getpid(), SIGTERM);
  runner.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  // The address is free again.
  Client refused(port);
  EXPECT_FALSE(refused.connected());
}

#ifdef RAG_BINARY
// `rag serve` as users run it: from an empty directory, the page from the binary, exit 0 on
// SIGTERM.
TEST(RagServe, ServesFromAnyDirectoryAndExitsZeroOnSigterm) {
  testing::TempDir dir;
  // A free port: bind to 0, read it, release it.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(probe);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::chdir(dir.path().c_str()) != 0) _exit(120);
    const std::string port_text = std::to_string(port);
    ::execl(RAG_BINARY, RAG_BINARY, "--data", "data", "--log-level", "warn", "serve", "--port",
            port_text.c_str(), static_cast<char*>(nullptr));
    _exit(121);
  }
  Response health;
  for (int i = 0; i < 400; ++i) {
    Client probe_client(port);
    if (probe_client.connected()) {
      health = Do(port, "GET", "/healthz");
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(health.status, 200);
  if (!EmbeddedWebAssets().empty()) {
    EXPECT_EQ(Do(port, "GET", "/").status, 200);
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal "
                                 << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}
#endif

}  // namespace
}  // namespace rag

namespace rag {
namespace {

// With dense retrieval on (the bundled embedder, when scripts/setup.sh fetched it), an upload
// through the API is embedded by its ingestion job, /healthz names the embedder and counts the
// vectors, and a question sharing no word with the document finds it.
TEST(HttpHybridRetrievalTest, UploadsAreEmbeddedAndHealthzSaysSo) {
  const std::string embedder = std::string(RAG_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
  if (!std::filesystem::exists(embedder + "/model.safetensors")) {
    GTEST_SKIP() << embedder << " is missing: run scripts/setup.sh";
  }
  testing::TempDir data;
  AssistantOptions assistant_options;
  assistant_options.data_dir = data.path();
  assistant_options.embedder_path = embedder;
  auto assistant = Assistant::Open(assistant_options);
  ASSERT_TRUE(assistant.ok()) << assistant.status().ToString();
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 2;
  auto server = HttpServer::Start(**assistant, options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const int port = (*server)->port();
  Response up = UploadFile(port, "bread.txt",
                           "Knead the dough for ten minutes, let it rise overnight, then bake the "
                           "loaf in a very hot oven until the crust is brown.");
  ASSERT_EQ(up.status, 202) << up.body;
  for (int i = 0; i < 1000 && Do(port, "GET", "/healthz").json().value("vectors", 0) < 1; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const Json health = Do(port, "GET", "/healthz").json();
  EXPECT_EQ(health.value("embedder", ""), "all-MiniLM-L6-v2") << health.dump();
  EXPECT_EQ(health.value("vectors", 0), 1) << health.dump();
  Response q = PostJson(port, {{"question", "How do I make bread?"}, {"top_k", 1}});
  ASSERT_EQ(q.status, 200) << q.body;
  ASSERT_EQ(q.json()["passages"].size(), 1u) << q.body;
  EXPECT_EQ(q.json()["passages"][0].value("filename", ""), "bread.txt") << q.body;
  // POST /v1/retrieve does the same hybrid retrieval.
  Response r = Do(port, "POST", "/v1/retrieve",
                  Json{{"question", "How do I make bread?"}, {"top_k", 1}}.dump(),
                  {"Content-Type: application/json"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["passages"], q.json()["passages"]) << r.body;
}

}  // namespace
}  // namespace rag
