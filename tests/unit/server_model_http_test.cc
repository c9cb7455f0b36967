// POST /v1/query in model mode over real HTTP: the stream of events from the engine, and a
// client that hangs up mid-answer cancelling its request in the engine.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>
#include <thread>

#include "common/json_util.h"
#include "server/assistant.h"
#include "server/http_server.h"
#include "tests/testing/http_client.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/server_model_testing.h"

namespace rag {
namespace {

using namespace std::chrono_literals;
using testing::Client;
using testing::Do;
using testing::ParseSse;
using testing::RawRequest;
using testing::Response;
using testing::SseEvent;

// Waits until the engine generates `n` answers at once (false after `timeout`).
bool WaitForGenerating(const Assistant& assistant, int n, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (assistant.generating() != n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  return assistant.generating() == n;
}

class ModelHttpTest : public ::testing::Test {
 protected:
  void Start(int max_answer_tokens, int max_answers = 64) {
    const std::string model = testing::MakeChatMlTestModel(dir_.file("chatml-tiny"));
    ASSERT_FALSE(model.empty());
    AssistantOptions options;
    options.data_dir = dir_.file("data");
    options.model_path = model;
    options.max_answer_tokens = max_answer_tokens;
    options.model_threads = 1;
    auto assistant = Assistant::Open(options);
    ASSERT_TRUE(assistant.ok()) << assistant.status().ToString();
    assistant_ = std::move(*assistant);
    std::ofstream(dir_.file("ferry.md")) << testing::kTestNotes;
    ASSERT_TRUE(assistant_->IngestPath(dir_.file("ferry.md"), "default").ok());
    ServerOptions server;
    server.host = "127.0.0.1";
    server.port = 0;
    server.threads = 2;
    server.max_answers = max_answers;
    auto started = HttpServer::Start(*assistant_, server);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(*started);
    port_ = server_->port();
  }

  Response Ask(const std::string& question, bool stream) {
    return Do(port_, "POST", "/v1/query", Json({{"question", question}, {"stream", stream}}).dump(),
              {"Content-Type: application/json"});
  }

  ::rag::testing::TempDir dir_;
  std::unique_ptr<Assistant> assistant_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(ModelHttpTest, StreamsPassagesTokensCitationsAndDone) {
  Start(/*max_answer_tokens=*/20);
  Response health = Do(port_, "GET", "/healthz");
  EXPECT_EQ(health.json()["mode"], "model");
  EXPECT_EQ(health.json()["model"], "chatml-tiny");

  Response r = Ask("When does the island ferry depart?", /*stream=*/true);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "text/event-stream; charset=utf-8");
  const std::vector<SseEvent> events = ParseSse(r.body);
  ASSERT_GE(events.size(), 4u) << r.body;
  EXPECT_EQ(events.front().event, "passages");
  EXPECT_FALSE(events.front().data["passages"].empty());
  size_t i = 1;
  for (; i < events.size() && events[i].event == "token"; ++i) {
    EXPECT_TRUE(events[i].data["text"].is_string());
  }
  EXPECT_GE(i, 3u) << "the model's answer comes token by token";
  ASSERT_EQ(events.size(), i + 2) << r.body;
  EXPECT_EQ(events[i].event, "citations");
  EXPECT_TRUE(events[i].data["citations"].is_array());
  EXPECT_TRUE(events[i].data["unsupported"].is_array());
  const Json& done = events[i + 1].data;
  EXPECT_EQ(events[i + 1].event, "done");
  EXPECT_EQ(done["mode"], "model");
  EXPECT_EQ(done["model"], "chatml-tiny");
  EXPECT_GT(done["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_FALSE(done.contains("passages"));
  // The same answer without streaming (greedy decoding).
  Response plain = Ask("When does the island ferry depart?", /*stream=*/false);
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.json()["answer"], done["answer"]);
  EXPECT_EQ(plain.json()["unsupported"], done["unsupported"]);

  // GET /metrics counts both answers, their tokens and time, and the second one's prompt found in
  // the engine's prefix cache (the same question over the same passages).
  Response m = Do(port_, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  auto value = [&](const std::string& name) {
    const size_t at = m.body.find("\n" + name + " ");
    EXPECT_NE(at, std::string::npos) << name << " missing from\n" << m.body;
    return at == std::string::npos ? -1.0 : std::stod(m.body.substr(at + name.size() + 2));
  };
  EXPECT_EQ(value("rag_answers_total"), 2);
  EXPECT_EQ(value("rag_completion_tokens_total"), 2 * done["usage"]["completion_tokens"].get<double>());
  EXPECT_EQ(value("rag_prompt_tokens_total"), 2 * done["usage"]["prompt_tokens"].get<double>());
  EXPECT_GT(value("rag_generation_seconds_total"), 0);
  EXPECT_GT(value("rag_prefix_cache_hit_tokens_total"), 0);
  EXPECT_GE(value("rag_prefix_cache_query_tokens_total"), value("rag_prefix_cache_hit_tokens_total"));
  EXPECT_EQ(value("rag_generating"), 0);
  EXPECT_EQ(value("rag_preemptions_total"), 0);  // two short answers, one at a time
  // Each answer's first token timed once, every later one against the one before it.
  EXPECT_EQ(value("rag_time_to_first_token_seconds_count"), 2);
  EXPECT_GT(value("rag_time_to_first_token_seconds_sum"), 0);
  EXPECT_EQ(value("rag_time_between_tokens_seconds_count"),
            value("rag_completion_tokens_total") - 2);
  EXPECT_LE(value("rag_time_between_tokens_seconds_sum"), value("rag_generation_seconds_total"));
}

// POST /v1/chat/completions with a model: a conversation without documents (plain and streamed,
// the same greedy text; usage counted; a seed makes sampled replies reproducible) and a grounded
// one with "rag".
TEST_F(ModelHttpTest, ChatCompletionsTalkAndAnswerFromTheDocuments) {
  Start(/*max_answer_tokens=*/20);
  Response models = Do(port_, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.json()["data"][0]["id"], "chatml-tiny");
  auto chat = [&](const Json& body) {
    return Do(port_, "POST", "/v1/chat/completions", body.dump(), {"Content-Type: application/json"});
  };
  const Json messages = Json::array({{{"role", "user"}, {"content", "Say something about ferries."}}});
  Response plain = chat({{"model", "chatml-tiny"}, {"messages", messages}, {"max_tokens", 12}});
  ASSERT_EQ(plain.status, 200) << plain.body;
  const Json c = plain.json();
  EXPECT_EQ(c["object"], "chat.completion");
  const std::string text = c["choices"][0]["message"]["content"];
  EXPECT_FALSE(text.empty());
  EXPECT_FALSE(c.contains("passages")) << "no documents without rag";
  EXPECT_GT(c["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_GE(c["usage"]["completion_tokens"].get<int>(), 1);
  EXPECT_LE(c["usage"]["completion_tokens"].get<int>(), 12);
  EXPECT_EQ(c["usage"]["total_tokens"].get<int>(),
            c["usage"]["prompt_tokens"].get<int>() + c["usage"]["completion_tokens"].get<int>());
  const std::string finish = c["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "stop" || finish == "length") << finish;

  Response streamed = chat({{"messages", messages}, {"max_tokens", 12}, {"stream", true},
                            {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  std::vector<SseEvent> events = ParseSse(streamed.body);
  ASSERT_GE(events.size(), 4u) << streamed.body;
  EXPECT_EQ(streamed.body.substr(streamed.body.size() - 14), "data: [DONE]\n\n");
  std::string joined;
  for (const SseEvent& e : events) {
    if (e.data.is_object() && !e.data["choices"].empty()) {
      joined += e.data["choices"][0]["delta"].value("content", "");
    }
  }
  EXPECT_EQ(joined, text) << "greedy: the stream is the same reply";
  const Json& usage = events[events.size() - 2].data;  // before [DONE]
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], c["usage"]);

  const Json sampled = {{"messages", messages}, {"max_tokens", 12}, {"temperature", 1.2}, {"seed", 5}};
  Response s1 = chat(sampled), s2 = chat(sampled);
  ASSERT_EQ(s1.status, 200) << s1.body;
  EXPECT_EQ(s1.json()["choices"][0]["message"]["content"], s2.json()["choices"][0]["message"]["content"]);

  Response grounded = chat({{"messages", {{{"role", "user"}, {"content", "When does the island ferry depart?"}}}},
                            {"rag", true}});
  ASSERT_EQ(grounded.status, 200) << grounded.body;
  EXPECT_FALSE(grounded.json()["passages"].empty());
  EXPECT_TRUE(grounded.json()["citations"].is_array());
  EXPECT_GT(grounded.json()["usage"]["completion_tokens"].get<int>(), 0);
  // max_tokens holds for a grounded answer too (the server's answer length here is 20).
  Response short_grounded = chat({{"messages", {{{"role", "user"}, {"content", "When does the island ferry depart?"}}}},
                                  {"rag", true}, {"max_tokens", 3}});
  ASSERT_EQ(short_grounded.status, 200) << short_grounded.body;
  EXPECT_LE(short_grounded.json()["usage"]["completion_tokens"].get<int>(), 3) << short_grounded.body;

  Response bad = chat({{"messages", messages}, {"temperature", -1}});
  EXPECT_EQ(bad.status, 400) << bad.body;
}

TEST_F(ModelHttpTest, ClientHangingUpCancelsTheAnswerAndTheServerGoesOn) {
  // Long enough that an answer nobody cancels would still be running at the end of the wait.
  Start(/*max_answer_tokens=*/4000);
  {
    Client client(port_);
    ASSERT_TRUE(client.Send(RawRequest(
        "POST", "/v1/query",
        Json({{"question", "When does the island ferry depart?"}, {"stream", true}}).dump(),
        {"Content-Type: application/json"})));
    // The passages event and the first tokens have arrived: the engine is generating.
    ASSERT_TRUE(client.ReadAtLeast(1500));
    EXPECT_EQ(assistant_->generating(), 1);
    client.Abort();
  }
  // The next write fails, the handler cancels the request and the engine drops it.
  EXPECT_TRUE(WaitForGenerating(*assistant_, 0, 5s)) << "the abandoned answer was not cancelled";
  Response health = Do(port_, "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json()["status"], "ok");
}

// A raw request for a long model answer on `client`, streamed or not.
void AskLong(Client& client, bool stream) {
  ASSERT_TRUE(client.Send(RawRequest(
      "POST", "/v1/query", Json({{"question", "When does the island ferry depart?"}, {"stream", stream}}).dump(),
      {"Content-Type: application/json"})));
}


TEST_F(ModelHttpTest, AnswersNeverHoldTheHttpThreads) {
  // Two HTTP threads, four long answers being made (three streamed, one whole): the server
  // still answers everyone else at once, and a client that hangs up cancels its answer,
  // streamed or not.
  Start(/*max_answer_tokens=*/4000);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    AskLong(*clients.back(), /*stream=*/i < 3);
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(clients[static_cast<size_t>(i)]->ReadAtLeast(1500)) << i;
  ASSERT_TRUE(WaitForGenerating(*assistant_, 4)) << assistant_->generating() << " answers generating";
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Response health = Do(port_, "GET", "/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "an HTTP thread waits for a model";
  }
  EXPECT_EQ(assistant_->generating(), 4);
  // The whole answer's client closes politely (FIN); the streams' reset their connections.
  clients[3].reset();
  EXPECT_TRUE(WaitForGenerating(*assistant_, 3)) << "a client that closed its connection still has its answer made";
  for (int i = 0; i < 3; ++i) clients[static_cast<size_t>(i)]->Abort();
  EXPECT_TRUE(WaitForGenerating(*assistant_, 0)) << assistant_->generating() << " abandoned answers go on";
}

TEST_F(ModelHttpTest, AnswersOverTheLimitGet429AndShutdownCancelsTheRest) {
  Start(/*max_answer_tokens=*/4000, /*max_answers=*/2);
  Client first(port_), second(port_);
  AskLong(first, /*stream=*/true);
  AskLong(second, /*stream=*/false);
  ASSERT_TRUE(WaitForGenerating(*assistant_, 2));
  Response busy = Do(port_, "POST", "/v1/query",
                     Json({{"question", "When does the island ferry depart?"}, {"stream", true}}).dump(),
                     {"Content-Type: application/json"});
  EXPECT_EQ(busy.status, 429) << busy.body;
  EXPECT_EQ(busy.header("retry-after"), "5");
  EXPECT_EQ(busy.json()["error"]["code"], "too_many_answers") << busy.body;
  // Shutting down cancels both answers at their next token: the stream ends, the whole answer
  // is a 503, and the server stops within the grace period.
  const auto t0 = std::chrono::steady_clock::now();
  server_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(assistant_->generating(), 0);
  std::optional<Response> whole = second.Read();
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->status, 503) << whole->body;
  std::optional<Response> streamed = first.Read();
  ASSERT_TRUE(streamed);
  EXPECT_EQ(streamed->status, 200);
  EXPECT_EQ(ParseSse(streamed->body).front().event, "passages");
}

}  // namespace
}  // namespace rag
