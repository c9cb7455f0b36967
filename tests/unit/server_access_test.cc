// API keys (server/api_keys.h) and the original-file route, over real HTTP on loopback: the keys
// file's rules, 401 for missing and unknown keys, and two keys with disjoint collections that
// never see each other's documents, jobs, files, passages or citations.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/file_util.h"
#include "common/json_util.h"
#include "server/api_keys.h"
#include "server/assistant.h"
#include "server/http_server.h"
#include "tests/testing/api_error.h"
#include "tests/testing/http_client.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

using namespace std::chrono_literals;
using testing::Do;
using testing::FormPart;
using testing::Multipart;
using testing::ParseSse;
using testing::Response;

constexpr char kAliceKey[] = "alice-0123456789abcdef";
constexpr char kBobKey[] = "bob-0123456789abcdef-xyz";
constexpr char kAdminKey[] = "admin-0123456789abcdef!";

// ---- The keys file. ----

TEST(ApiKeysTest, FindsEachKeyWithItsCollections) {
  auto keys = ApiKeys::Parse(R"({"keys": [
      {"name": "alice", "key": "alice-0123456789abcdef", "collections": ["hr", "eng", "hr"]},
      {"name": "ops", "key": "admin-0123456789abcdef!", "collections": ["*"]}]})");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ((*keys)->size(), 2u);
  std::optional<Access> alice = (*keys)->Find(kAliceKey);
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->key_name, "alice");
  EXPECT_FALSE(alice->admin());
  EXPECT_EQ(alice->collections, (std::vector<std::string>{"hr", "eng"}));
  EXPECT_TRUE(alice->MaySee("eng"));
  EXPECT_FALSE(alice->MaySee("default"));
  std::optional<Access> ops = (*keys)->Find(kAdminKey);
  ASSERT_TRUE(ops);
  EXPECT_TRUE(ops->admin());
  EXPECT_TRUE(ops->MaySee("anything"));
  EXPECT_FALSE((*keys)->Find(""));
  EXPECT_FALSE((*keys)->Find("alice-0123456789abcde"));  // a prefix
  EXPECT_FALSE((*keys)->Find("alice-0123456789abcdef "));
}

TEST(ApiKeysTest, RejectsMalformedFilesWithoutShowingKeys) {
  const std::string ok_entry =
      R"({"name": "a", "key": "k-0123456789abcdef", "collections": ["x"]})";
  const struct {
    std::string text, message;
  } cases[] = {
      {"not json", "JSON"},
      {"[]", "object"},
      {R"({"keys": []})", "at least one key"},
      {R"({"keys": {}})", "at least one key"},
      {R"({"keys": [1]})", "keys[0] must be an object"},
      {R"({"keys": [)" + ok_entry + R"(], "extra": 1})", "extra"},
      {R"({"keys": [{"name": "a", "key": "k-0123456789abcdef", "collections": ["x"], "admin": true}]})",
       "admin"},
      {R"({"keys": [{"key": "k-0123456789abcdef", "collections": ["x"]}]})", "name"},
      {R"({"keys": [{"name": "a b", "key": "k-0123456789abcdef", "collections": ["x"]}]})",
       "name must be"},
      {R"({"keys": [)" + ok_entry + "," +
           R"({"name": "a", "key": "other-0123456789abcdef", "collections": ["x"]}]})",
       "keys[1] (\"a\"): the name is used twice"},
      {R"({"keys": [)" + ok_entry + "," +
           R"({"name": "b", "key": "k-0123456789abcdef", "collections": ["y"]}]})",
       "keys[1] (\"b\"): the same key as \"a\""},
      {R"({"keys": [{"name": "a", "key": "", "collections": ["x"]}]})", "the key is empty"},
      {R"({"keys": [{"name": "a", "key": "short-key", "collections": ["x"]}]})", "shorter than 16"},
      {R"({"keys": [{"name": "a", "key": "has space 0123456789", "collections": ["x"]}]})",
       "printable"},
      {R"({"keys": [{"name": "a", "key": 12345678901234567, "collections": ["x"]}]})", "key"},
      {R"({"keys": [{"name": "a", "key": "k-0123456789abcdef"}]})", "collections"},
      {R"({"keys": [{"name": "a", "key": "k-0123456789abcdef", "collections": []}]})", "non-empty"},
      {R"({"keys": [{"name": "a", "key": "k-0123456789abcdef", "collections": ["*", "x"]}]})",
       "alone"},
      {R"({"keys": [{"name": "a", "key": "k-0123456789abcdef", "collections": ["no/slash"]}]})",
       "collection"},
      {R"({"keys": [{"name": "a", "key": "k-0123456789abcdef", "collections": [3]}]})", "strings"},
  };
  for (const auto& c : cases) {
    auto keys = ApiKeys::Parse(c.text);
    ASSERT_FALSE(keys.ok()) << c.text;
    EXPECT_EQ(keys.status().code(), StatusCode::kInvalidArgument) << c.text;
    const std::string& message = keys.status().message();
    EXPECT_NE(message.find(c.message), std::string::npos) << c.text << " -> " << message;
    EXPECT_EQ(message.find("0123456789abcdef"), std::string::npos) << "the key leaked: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

// ---- Two keys with disjoint collections on a real server. ----

// The same sentence about the ferry is in both collections (so that near-duplicate merging is
// exercised), each document also has words of its own.
const char kHrNotes[] =
    "# Holiday rules\n\nThe island ferry departs from the north pier at seven o'clock every "
    "morning.\n\nStaff may take the marmalade day off once a year.\n";
const char kEngNotes[] =
    "# Build notes\n\nThe island ferry departs from the north pier at seven o'clock every "
    "morning.\n\nThe zebrafinch compiler flag doubles the ferry build speed.\n";

std::string Bearer(const std::string& key) { return "Authorization: Bearer " + key; }

Response Get(int port, const std::string& path, const std::string& key) {
  return Do(port, "GET", path, "",
            key.empty() ? std::vector<std::string>{} : std::vector{Bearer(key)});
}

Response PostJsonAs(int port, const std::string& path, const Json& body, const std::string& key) {
  return Do(port, "POST", path, body.dump(), {"Content-Type: application/json", Bearer(key)});
}

Response UploadAs(int port, const std::string& key, const std::string& filename,
                  const std::string& data, const std::string& collection) {
  std::vector<FormPart> parts = {{"file", filename, data}};
  if (!collection.empty()) parts.push_back({"collection", std::nullopt, collection});
  return Do(port, "POST", "/v1/documents", Multipart(parts),
            {testing::MultipartContentType(), Bearer(key)});
}

class ApiKeysHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AssistantOptions assistant_options;
    assistant_options.data_dir = data_.path();
    auto assistant = Assistant::Open(assistant_options);
    ASSERT_TRUE(assistant.ok()) << assistant.status().ToString();
    assistant_ = std::move(*assistant);
    auto keys =
        ApiKeys::Parse(Json{{"keys",
                             {{{"name", "alice"}, {"key", kAliceKey}, {"collections", {"hr"}}},
                              {{"name", "bob"}, {"key", kBobKey}, {"collections", {"eng", "ops"}}},
                              {{"name", "root"}, {"key", kAdminKey}, {"collections", {"*"}}}}}}
                           .dump());
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.api_keys = *keys;
    auto server = HttpServer::Start(*assistant_, options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    port_ = server_->port();
  }

  struct Added {
    int64_t id = 0;
    std::string job;
  };
  // Uploads as `key` and waits until the job is done.
  Added AddDocument(const std::string& key, const std::string& filename, const std::string& data,
                    const std::string& collection) {
    Response r = UploadAs(port_, key, filename, data, collection);
    EXPECT_EQ(r.status, 202) << r.body;
    Added added{r.json().value("document_id", int64_t{0}), r.json().value("job_id", "")};
    const Json job = testing::WaitForJob(
        port_, added.job, 60, key.empty() ? std::vector<std::string>{} : std::vector{Bearer(key)});
    EXPECT_EQ(job.value("state", ""), "done") << job.dump();
    return added;
  }

  testing::TempDir data_;
  std::unique_ptr<Assistant> assistant_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

// The error JSON with `status` and error code `code`.
void ExpectErrorJson(const Response& r, int status, const std::string& code) {
  testing::ExpectError(r, status, /*message_part=*/"", code);
}

TEST_F(ApiKeysHttpTest, MissingOrUnknownKeysGet401OnEveryApiRoute) {
  const Added doc = AddDocument(kAliceKey, "hr.md", kHrNotes, "hr");
  const std::string id = std::to_string(doc.id);
  const struct {
    const char* method;
    std::string path;
  } routes[] = {{"GET", "/v1/documents"},
                {"POST", "/v1/documents"},
                {"GET", "/v1/documents/" + id},
                {"DELETE", "/v1/documents/" + id},
                {"GET", "/v1/documents/" + id + "/file"},
                {"GET", "/v1/jobs/" + doc.job},
                {"POST", "/v1/query"},
                {"POST", "/v1/retrieve"},
                {"POST", "/v1/chat/completions"},
                {"GET", "/v1/models"},
                {"GET", "/metrics"},
                {"GET", "/v1/no-such-route"},
                {"PUT", "/v1/query"}};
  for (const auto& route : routes) {
    SCOPED_TRACE(std::string(route.method) + " " + route.path);
    Response missing = Do(port_, route.method, route.path);
    ExpectErrorJson(missing, 401, "missing_api_key");
    EXPECT_EQ(missing.header("www-authenticate"), "Bearer realm=\"rag\"");
    Response wrong = Do(port_, route.method, route.path, "", {Bearer("alice-0123456789abcdeX")});
    ExpectErrorJson(wrong, 401, "invalid_api_key");
    EXPECT_EQ(wrong.header("www-authenticate").rfind("Bearer ", 0), 0u);
    EXPECT_EQ(wrong.body.find("alice-0123456789"), std::string::npos) << "the key is echoed";
    ExpectErrorJson(Do(port_, route.method, route.path, "", {"Authorization: Basic YTpi"}), 401,
                    "missing_api_key");
  }
  // The scheme is case-insensitive (RFC 7235).
  EXPECT_EQ(Do(port_, "GET", "/v1/models", "", {std::string("authorization: bearer ") + kAliceKey})
                .status,
            200);
  // The page and liveness stay open; the totals of every collection are for admin keys only.
  EXPECT_EQ(Do(port_, "GET", "/").status, 200);
  Response health = Do(port_, "GET", "/healthz");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(health.json(), Json({{"status", "ok"}}));
  EXPECT_FALSE(Get(port_, "/healthz", kAliceKey).json().contains("documents"));
  EXPECT_EQ(Get(port_, "/healthz", kAdminKey).json().value("documents", 0), 1);
  // /metrics: admin keys only.
  ExpectErrorJson(Get(port_, "/metrics", kAliceKey), 403, "permission_denied");
  Response metrics = Get(port_, "/metrics", kAdminKey);
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("route=\"other\",method=\"GET\",code=\"401\""), std::string::npos);
}

TEST_F(ApiKeysHttpTest, EachKeySeesOnlyItsOwnCollections) {
  const Added hr = AddDocument(kAliceKey, "hr.md", kHrNotes, "hr");
  const Added eng = AddDocument(kBobKey, "eng.md", kEngNotes, "eng");
  const std::string hr_id = std::to_string(hr.id), eng_id = std::to_string(eng.id);

  // Uploads only into the key's collections; the default collection is one like any other.
  ExpectErrorJson(UploadAs(port_, kAliceKey, "x.md", "Some text here.", "eng"), 403,
                  "permission_denied");
  ExpectErrorJson(UploadAs(port_, kAliceKey, "x.md", "Some text here.", ""), 403,
                  "permission_denied");
  EXPECT_EQ(UploadAs(port_, kAdminKey, "x.md", "Some text here.", "").status, 202);

  // Lists: own documents only; another key's collection lists as empty, like a missing one.
  auto ids = [&](const std::string& path, const std::string& key) {
    std::vector<int64_t> out;
    const Json list = Get(port_, path, key).json();
    for (const Json& d : list["documents"]) out.push_back(d["id"]);
    return out;
  };
  EXPECT_EQ(ids("/v1/documents", kAliceKey), std::vector<int64_t>{hr.id});
  EXPECT_EQ(ids("/v1/documents", kBobKey), std::vector<int64_t>{eng.id});
  EXPECT_EQ(ids("/v1/documents?collection=eng", kAliceKey), std::vector<int64_t>{});
  EXPECT_EQ(ids("/v1/documents", kAdminKey).size(), 3u);

  // By id: another collection's document, file and job are answered as if they did not exist.
  const std::string missing_id = "999999";
  for (const auto& [key, own, other, own_job, other_job] :
       {std::tuple{kAliceKey, hr_id, eng_id, hr.job, eng.job},
        std::tuple{kBobKey, eng_id, hr_id, eng.job, hr.job}}) {
    SCOPED_TRACE(std::string("key ") + key);
    EXPECT_EQ(Get(port_, "/v1/documents/" + own, key).status, 200);
    EXPECT_EQ(Get(port_, "/v1/documents/" + own + "/file", key).status, 200);
    EXPECT_EQ(Get(port_, "/v1/jobs/" + own_job, key).status, 200);
    for (const std::string& suffix : {std::string(""), std::string("/file")}) {
      Response probe = Get(port_, "/v1/documents/" + other + suffix, key);
      Response absent = Get(port_, "/v1/documents/" + missing_id + suffix, key);
      ExpectErrorJson(probe, 404, "not_found");
      EXPECT_EQ(probe.json()["error"]["message"], "no document with id " + other) << probe.body;
      EXPECT_EQ(absent.json()["error"]["message"], "no document with id " + missing_id);
    }
    Response job = Get(port_, "/v1/jobs/" + other_job, key);
    ExpectErrorJson(job, 404, "not_found");
    EXPECT_EQ(job.json()["error"]["message"],
              "no job \"" + other_job + "\" (finished jobs are kept in memory until a restart)");
    ExpectErrorJson(Do(port_, "DELETE", "/v1/documents/" + other, "", {Bearer(key)}), 404,
                    "not_found");
  }
  // The refused deletes deleted nothing.
  EXPECT_EQ(Get(port_, "/v1/documents/" + hr_id, kAdminKey).status, 200);
  EXPECT_EQ(Get(port_, "/v1/documents/" + eng_id, kAdminKey).status, 200);

  // Answers: the shared ferry sentence comes from the key's own copy, and nothing of the other
  // collection appears in passages, citations or the answer text.
  const std::string question =
      "When does the island ferry depart, and what about zebrafinch and marmalade?";
  for (const auto& [key, own, foreign_word] :
       {std::tuple{kAliceKey, hr.id, "zebrafinch"}, std::tuple{kBobKey, eng.id, "marmalade"}}) {
    SCOPED_TRACE(std::string("key ") + key);
    // Passages and citations, where `answer` has them, are the key's own document's.
    auto expect_own = [&](const Json& answer, const std::string& raw) {
      ASSERT_TRUE(answer.is_object()) << raw;
      ASSERT_FALSE(answer.value("passages", Json::array()).empty()) << raw;
      for (const Json& p : answer["passages"]) EXPECT_EQ(p["document_id"], own) << raw;
      for (const Json& c : answer.value("citations", Json::array())) {
        for (const Json& s : c["support"]) EXPECT_EQ(s["document_id"], own) << raw;
      }
      EXPECT_EQ(raw.find(foreign_word), std::string::npos) << raw;
    };
    Response q = PostJsonAs(port_, "/v1/query", {{"question", question}}, key);
    ASSERT_EQ(q.status, 200) << q.body;
    expect_own(q.json(), q.body);
    EXPECT_NE(q.json()["answer"].get<std::string>().find("seven"), std::string::npos) << q.body;
    Response retrieved = PostJsonAs(port_, "/v1/retrieve", {{"question", question}}, key);
    ASSERT_EQ(retrieved.status, 200) << retrieved.body;
    expect_own(retrieved.json(), retrieved.body);
    EXPECT_EQ(retrieved.json()["passages"], q.json()["passages"]);

    Response streamed =
        PostJsonAs(port_, "/v1/query", {{"question", question}, {"stream", true}}, key);
    ASSERT_EQ(streamed.status, 200);
    const auto events = ParseSse(streamed.body);
    ASSERT_GE(events.size(), 3u) << streamed.body;
    expect_own(events.front().data, streamed.body);  // "passages"
    ASSERT_EQ(events[events.size() - 2].event, "citations") << streamed.body;
    Json cited = events[events.size() - 2].data;
    cited["passages"] = events.front().data["passages"];
    expect_own(cited, streamed.body);

    const Json messages = Json::array({{{"role", "user"}, {"content", question}}});
    Response chat =
        PostJsonAs(port_, "/v1/chat/completions", {{"messages", messages}, {"rag", true}}, key);
    ASSERT_EQ(chat.status, 200) << chat.body;
    expect_own(chat.json(), chat.body);
    Response chat_stream =
        PostJsonAs(port_, "/v1/chat/completions",
                   {{"messages", messages}, {"rag", true}, {"stream", true}}, key);
    ASSERT_EQ(chat_stream.status, 200);
    auto chunks = ParseSse(chat_stream.body);
    ASSERT_GE(chunks.size(), 2u);
    expect_own(chunks[chunks.size() - 2].data, chat_stream.body);

    // Naming what the key may not see finds nothing (the documented "empty result"), exactly
    // as for a collection or document that does not exist.
    const std::string other_id = std::to_string(own == hr.id ? eng.id : hr.id);
    for (const Json& filter : {Json{{"collection", own == hr.id ? "eng" : "hr"}},
                               Json{{"document_id", std::stoll(other_id)}}}) {
      Json body = filter;
      body["question"] = question;
      Response none = PostJsonAs(port_, "/v1/query", body, key);
      ASSERT_EQ(none.status, 200) << none.body;
      EXPECT_TRUE(none.json()["passages"].empty()) << none.body;
      EXPECT_TRUE(none.json()["citations"].empty()) << none.body;
      Response retrieved_none = PostJsonAs(port_, "/v1/retrieve", body, key);
      ASSERT_EQ(retrieved_none.status, 200) << retrieved_none.body;
      EXPECT_TRUE(retrieved_none.json()["passages"].empty()) << retrieved_none.body;
      Json rag = filter;
      Response chat_none =
          PostJsonAs(port_, "/v1/chat/completions", {{"messages", messages}, {"rag", rag}}, key);
      ASSERT_EQ(chat_none.status, 200) << chat_none.body;
      EXPECT_TRUE(chat_none.json()["passages"].empty()) << chat_none.body;
    }
  }
  // An admin key sees both copies' collections (the repeated sentence once).
  Response all = PostJsonAs(port_, "/v1/query", {{"question", question}}, kAdminKey);
  ASSERT_EQ(all.status, 200);
  EXPECT_NE(all.body.find("zebrafinch"), std::string::npos);
  EXPECT_NE(all.body.find("marmalade"), std::string::npos);
}

// The same notes in two collections are near-duplicates that retrieval keeps once: each key
// still gets its own copy, never the other collection's (however it ranks).
TEST_F(ApiKeysHttpTest, NearDuplicatesAcrossCollectionsStayWithTheirKeys) {
  const Added hr = AddDocument(kAliceKey, "ferry.md", kHrNotes, "hr");
  const Added eng = AddDocument(kBobKey, "ferry.md", kHrNotes, "eng");
  const Json question = {{"question", "When does the island ferry depart?"}};
  for (const auto& [key, own] : {std::pair{kAliceKey, hr.id}, std::pair{kBobKey, eng.id}}) {
    Response q = PostJsonAs(port_, "/v1/query", question, key);
    ASSERT_EQ(q.status, 200) << q.body;
    ASSERT_EQ(q.json()["passages"].size(), 1u) << q.body;
    EXPECT_EQ(q.json()["passages"][0]["document_id"], own) << q.body;
    Response r = PostJsonAs(port_, "/v1/retrieve", question, key);
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(r.json()["passages"].size(), 1u) << r.body;
    EXPECT_EQ(r.json()["passages"][0]["document_id"], own) << r.body;
  }
  Response all = PostJsonAs(port_, "/v1/query", question, kAdminKey);
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(all.json()["passages"].size(), 1u) << all.body;
}

// Keys lift the loopback-only rule: any address without --insecure.
TEST(ApiKeysBindTest, KeysAllowListeningOnEveryAddress) {
  testing::TempDir data;
  AssistantOptions assistant_options;
  assistant_options.data_dir = data.path();
  auto assistant = Assistant::Open(assistant_options);
  ASSERT_TRUE(assistant.ok());
  ServerOptions options;
  options.host = "0.0.0.0";
  options.port = 0;
  auto refused = HttpServer::Start(**assistant, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--keys"), std::string::npos);
  auto keys = ApiKeys::Parse(
      Json{{"keys", {{{"name", "a"}, {"key", kAliceKey}, {"collections", {"*"}}}}}}.dump());
  ASSERT_TRUE(keys.ok());
  options.api_keys = *keys;
  auto started = HttpServer::Start(**assistant, options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(Do((*started)->port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(Do((*started)->port(), "GET", "/v1/models").status, 401);
}

// ---- GET /v1/documents/{id}/file without keys. ----

TEST(DocumentFileTest, ServesTheUploadedBytesSafely) {
  testing::TempDir data;
  AssistantOptions assistant_options;
  assistant_options.data_dir = data.path();
  auto assistant = Assistant::Open(assistant_options);
  ASSERT_TRUE(assistant.ok());
  ServerOptions options;
  options.port = 0;
  options.threads = 2;
  auto server = HttpServer::Start(**assistant, options);
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  auto upload = [&](const std::string& filename, const std::string& bytes) {
    Response r = Do(port, "POST", "/v1/documents", Multipart({{"file", filename, bytes}}),
                    {testing::MultipartContentType()});
    EXPECT_EQ(r.status, 202) << r.body;
    return std::to_string(r.json().value("document_id", 0));
  };
  auto pdf = ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/report.pdf");
  ASSERT_TRUE(pdf.ok());
  const std::string pdf_id = upload("report.pdf", *pdf);
  const std::string html =
      "<html><body><script>alert(document.cookie)</script>Hi there.</body></html>";
  const std::string html_id = upload("l'été 1.html", html);

  Response got = Do(port, "GET", "/v1/documents/" + pdf_id + "/file");
  ASSERT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == *pdf) << "the PDF bytes differ";
  EXPECT_EQ(got.header("content-type"), "application/pdf");
  EXPECT_EQ(got.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(got.header("content-security-policy"), "");  // Chrome's viewer breaks in a sandbox
  EXPECT_EQ(got.header("content-disposition"),
            "inline; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");

  Response page = Do(port, "GET", "/v1/documents/" + html_id + "/file");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.body, html);
  EXPECT_EQ(page.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(page.header("content-security-policy"), "sandbox");
  EXPECT_EQ(page.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(page.header("content-disposition"),
            "inline; filename=\"l___t__ 1.html\"; filename*=UTF-8''l%27%C3%A9t%C3%A9%201.html");

  // Not a PDF inside, whatever its name: not served as one.
  const std::string fake_id = upload("fake.pdf", "<html><script>alert(1)</script></html>");
  EXPECT_EQ(Do(port, "GET", "/v1/documents/" + fake_id + "/file").header("content-type"),
            "text/plain; charset=utf-8");

  EXPECT_EQ(Do(port, "GET", "/v1/documents/999999/file").status, 404);
  EXPECT_EQ(Do(port, "GET", "/v1/documents/abc/file").status, 400);
  EXPECT_EQ(Do(port, "POST", "/v1/documents/" + pdf_id + "/file").status, 405);
  EXPECT_EQ(Do(port, "GET", "/v1/documents/" + pdf_id + "/other").status, 404);
  Response deleted;
  for (int i = 0;
       i < 500 && (deleted = Do(port, "DELETE", "/v1/documents/" + html_id)).status == 409; ++i) {
    std::this_thread::sleep_for(10ms);  // its ingestion is running
  }
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(Do(port, "GET", "/v1/documents/" + html_id + "/file").status, 404);
}

#ifdef RAG_BINARY
// `rag serve --keys`: a bad keys file is one line on stderr and a non-zero exit, before
// anything listens; a good one lets --host 0.0.0.0 start without --insecure.
TEST(RagServeKeys, BadKeysFilesFailWithOneLine) {
  testing::TempDir dir;
  const struct {
    std::string text, message;
  } cases[] = {
      {"{", "JSON"},
      {R"({"keys": [{"name": "a", "key": "tiny", "collections": ["x"]}]})", "shorter than 16"},
      {R"({"keys": [{"name": "a", "key": "k-0123456789abcdef", "collections": ["x"]},
                    {"name": "b", "key": "k-0123456789abcdef", "collections": ["y"]}]})",
       "the same key as \"a\""},
      {R"({"keys": [{"name": "a", "key": "", "collections": ["x"]}]})", "empty"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.path() + "/keys.json";
    ASSERT_TRUE(WriteFileAtomic(path, c.text).ok());
    const auto r = testing::RunCommand(std::string(RAG_BINARY) + " --data " + dir.path() +
                                       "/data serve --port 1 --keys " + path + " 2>&1");
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("rag serve: keys file " + path + ": ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_EQ(r.out.find("0123456789abcdef"), std::string::npos) << r.out;
  }
  const auto missing = testing::RunCommand(std::string(RAG_BINARY) + " serve --keys " + dir.path() +
                                           "/none.json 2>&1");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("none.json"), std::string::npos) << missing.out;
}

TEST(RagServeKeys, KeysAllowHostZeroWithoutInsecure) {
  testing::TempDir dir;
  const std::string keys = dir.path() + "/keys.json";
  ASSERT_TRUE(
      WriteFileAtomic(
          keys,
          Json{{"keys", {{{"name", "a"}, {"key", kAliceKey}, {"collections", {"*"}}}}}}.dump())
          .ok());
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(probe);
  // Without keys the same command is refused.
  const auto refused =
      testing::RunCommand(std::string(RAG_BINARY) + " --data " + dir.path() +
                          "/data serve --host 0.0.0.0 --port " + std::to_string(port) + " 2>&1");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.out.find("--keys"), std::string::npos) << refused.out;

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string port_text = std::to_string(port), data = dir.path() + "/data";
    ::execl(RAG_BINARY, RAG_BINARY, "--data", data.c_str(), "--log-level", "warn", "serve",
            "--host", "0.0.0.0", "--port", port_text.c_str(), "--keys", keys.c_str(), "--mode",
            "extractive", static_cast<char*>(nullptr));
    _exit(121);
  }
  Response health, models;
  for (int i = 0; i < 500 && health.status == 0; ++i) {
    health = Do(port, "GET", "/healthz");
    if (health.status == 0) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Do(port, "GET", "/v1/models").status, 401);
  EXPECT_EQ(Get(port, "/v1/models", kAliceKey).status, 200);
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
#endif

}  // namespace
}  // namespace rag
