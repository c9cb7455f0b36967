// POST /v1/query: strict request parsing, Assistant::Query, and a JSON or SSE answer.
//
// Streaming (`"stream": true`) sends server-sent events in this order:
//   event: passages   data: {"passages":[...]}            (as in the JSON answer)
//   event: token      data: {"text":"..."}                (the answer in pieces; they concatenate
//                                                          to "answer" exactly)
//   event: citations  data: {"citations":[...]}
//   event: done       data: the JSON answer without "passages"
// Errors found before streaming (bad request, failed retrieval) are ordinary JSON errors with a
// 4xx/5xx status. Assistant::Query is synchronous today (BM25 + the extractive answerer), so the
// events are written on the HTTP thread right after it returns; see sse_writer.h for why writes
// stay on that thread.
#include <pistache/http.h>
#include <pistache/peer.h>

#include <cctype>

#include "common/logging.h"
#include "server/api_json.h"
#include "server/assistant.h"
#include "server/http_internal.h"
#include "server/sse_writer.h"

namespace rag {
namespace {

constexpr int kMaxTopK = 50;

// Pieces of about `target` bytes, cut after a space (so never inside a UTF-8 sequence).
std::vector<std::string_view> SplitForStreaming(std::string_view text, size_t target) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (start < text.size()) {
    const size_t space = start + target >= text.size() ? text.npos : text.find(' ', start + target);
    if (space == text.npos) {
      pieces.push_back(text.substr(start));
      break;
    }
    pieces.push_back(text.substr(start, space + 1 - start));
    start = space + 1;
  }
  return pieces;
}

int StreamQueryEvents(const Json& result, Pistache::Http::ResponseWriter writer) {
  std::shared_ptr<Pistache::Tcp::Peer> peer = writer.getPeer();
  AddResponseHeader(writer, "Content-Type", "text/event-stream; charset=utf-8");
  AddResponseHeader(writer, "Cache-Control", "no-cache");
  AddResponseHeader(writer, "X-Accel-Buffering", "no");
  try {
    SseWriter sse(writer.stream(Pistache::Http::Code::Ok));
    sse.Send("passages", DumpJson({{"passages", result.value("passages", Json::array())}}));
    const std::string answer = result.value("answer", std::string());
    for (std::string_view piece : SplitForStreaming(answer, 24)) {
      if (!sse.Send("token", DumpJson({{"text", std::string(piece)}}))) break;
    }
    sse.Send("citations", DumpJson({{"citations", result.value("citations", Json::array())}}));
    Json done = result;
    done.erase("passages");
    sse.Send("done", DumpJson(done));
    sse.End();
    if (sse.failed()) {
      RAG_LOG(INFO) << "http: query stream cut short: the client hung up";
    }
  } catch (const std::exception& e) {
    // writer.stream() throws when the headers do not fit; nothing was sent then.
    RAG_LOG(WARN) << "http: could not stream the answer: " << e.what();
  }
  // The response is complete: let Pistache's keep-alive timer, not its header timer, govern the
  // connection from now on (ResponseWriter::send does the same for ordinary responses). This
  // runs on the connection's own thread.
  if (peer) peer->setIdle(true);
  return 200;
}

}  // namespace

HttpReply HandleQuery(ServerContext& ctx, const Pistache::Http::Request& request) {
  if (std::optional<std::string> type = HeaderValue(request, "Content-Type")) {
    std::string media = type->substr(0, type->find(';'));
    while (!media.empty() && media.back() == ' ') media.pop_back();
    for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // `curl -d '{...}'` labels its body application/x-www-form-urlencoded; the body must still
    // be a JSON object, so accepting that label only spares users a -H flag.
    if (media != "application/json" && media != "application/x-www-form-urlencoded") {
      return ErrorReply(Unsupported("Content-Type must be application/json"));
    }
  }
  StatusOr<Json> body =
      ParseJsonObject(request.body(), {"question", "collection", "top_k", "document_id", "stream"});
  if (!body.ok()) return ErrorReply(body.status());

  QueryRequest query;
  StatusOr<std::string> question = GetString(*body, "question");
  if (!question.ok()) return ErrorReply(question.status());
  bool blank = true;
  for (char c : *question) blank = blank && std::isspace(static_cast<unsigned char>(c));
  if (blank) return ErrorReply(InvalidArgument("question must not be empty"));
  query.question = std::move(*question);

  StatusOr<std::optional<std::string>> collection = GetOptionalString(*body, "collection");
  if (!collection.ok()) return ErrorReply(collection.status());
  if (*collection) {
    Status valid = ValidateCollection(**collection);
    if (!valid.ok()) return ErrorReply(valid);
    query.collection = **collection;
  }
  StatusOr<std::optional<long long>> top_k = GetOptionalInt(*body, "top_k");
  if (!top_k.ok()) return ErrorReply(top_k.status());
  if (*top_k) {
    if (**top_k < 1 || **top_k > kMaxTopK) {
      return ErrorReply(InvalidArgument("top_k must be between 1 and " + std::to_string(kMaxTopK)));
    }
    query.top_k = static_cast<int>(**top_k);
  }
  StatusOr<std::optional<long long>> document_id = GetOptionalInt(*body, "document_id");
  if (!document_id.ok()) return ErrorReply(document_id.status());
  if (*document_id) {
    if (**document_id < 1) return ErrorReply(InvalidArgument("document_id must be positive"));
    query.document_id = **document_id;
  }
  StatusOr<std::optional<bool>> stream = GetOptionalBool(*body, "stream");
  if (!stream.ok()) return ErrorReply(stream.status());

  StatusOr<QueryResult> result = ctx.assistant.Query(query);
  if (!result.ok()) return ErrorReply(result.status());
  Json json = QueryResultToJson(*result);
  if (!stream->value_or(false)) return JsonReply(200, json);

  HttpReply reply;
  reply.stream = [json = std::move(json)](Pistache::Http::ResponseWriter writer) {
    return StreamQueryEvents(json, std::move(writer));
  };
  return reply;
}

}  // namespace rag
