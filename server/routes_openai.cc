// The OpenAI-compatible routes, for OpenAI client libraries and the front ends built on them:
//   GET  /v1/models            {"object":"list","data":[{"id","object":"model","created","owned_by"}]}
//   POST /v1/chat/completions  a chat.completion, or with "stream": true chat.completion.chunk
//                              events ("data: {...}" lines, then "data: [DONE]").
// A request with "rag" (true, or {"top_k", "collection", "document_id"}) is answered from the
// documents: the last user message is the question, retrieval and the grounded answer are those
// of POST /v1/query (model or extractive mode), and the response carries "passages",
// "citations" and "unsupported" beside OpenAI's fields (a streamed answer sends them in its last
// chunk). Without "rag" the messages go to the model as a conversation (no documents); a server
// without a model refuses that. Errors keep DESIGN.md's JSON shape, which is OpenAI's
// {"error":{"message","type","code"}}. Answers follow routes_query.cc's threading rules.
#include <pistache/http.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "common/logging.h"
#include "server/api_json.h"
#include "server/assistant.h"
#include "server/http_internal.h"
#include "server/sse_writer.h"

namespace rag {
namespace {

constexpr int kMaxChatTokens = 4096;
std::atomic<int64_t> g_completion_ids{0};

// The id a response's model field shows: the model's name, or "extractive" without one.
std::string ModelId(const Assistant& a) {
  return a.model_name().empty() ? std::string("extractive") : a.model_name();
}

struct ChatCall {
  std::vector<ChatMessage> messages;
  bool stream = false;
  bool include_usage = false;
  int max_tokens = 0;
  SamplingParams sampling;
  bool rag = false;
  QueryRequest query;  // rag: the last user message and the filters
  std::string id;      // "chatcmpl-N"
  int64_t created = 0;
};

// A message's content: a string, or OpenAI's array of parts of which only "text" ones are taken.
StatusOr<std::string> MessageContent(const Json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string text;
    for (const Json& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string()) {
        return InvalidArgument("messages[" + std::to_string(index) +
                               "].content: only text parts are supported");
      }
      text += part["text"].get<std::string>();
    }
    return text;
  }
  return InvalidArgument("messages[" + std::to_string(index) + "].content must be a string");
}

StatusOr<ChatCall> ParseChatCall(const Assistant& assistant, std::string_view body_text) {
  // OpenAI's fields that change nothing here are accepted as long as they ask for nothing else.
  RAG_ASSIGN_OR_RETURN(
      Json body, ParseJsonObject(body_text, {"model", "messages", "stream", "stream_options",
                                             "max_tokens", "max_completion_tokens", "temperature",
                                             "top_p", "seed", "n", "user", "rag"}));
  ChatCall call;
  RAG_ASSIGN_OR_RETURN(std::optional<std::string> model, GetOptionalString(body, "model"));
  if (model && *model != ModelId(assistant)) {
    return NotFound("model \"" + *model + "\" is not served here (GET /v1/models lists \"" +
                    ModelId(assistant) + "\")");
  }
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    return InvalidArgument("messages must be a non-empty array");
  }
  for (size_t i = 0; i < body["messages"].size(); ++i) {
    const Json& m = body["messages"][i];
    if (!m.is_object()) return InvalidArgument("messages[" + std::to_string(i) + "] must be an object");
    RAG_RETURN_IF_ERROR(CheckKnownFields(m, {"role", "content", "name"}));
    RAG_ASSIGN_OR_RETURN(std::string role, GetString(m, "role"));
    if (role != "system" && role != "user" && role != "assistant") {
      return InvalidArgument("messages[" + std::to_string(i) + "].role \"" + role +
                             "\" (system, user or assistant)");
    }
    if (!m.contains("content")) return InvalidArgument("messages[" + std::to_string(i) + "].content is missing");
    RAG_ASSIGN_OR_RETURN(std::string content, MessageContent(m["content"], i));
    call.messages.push_back({std::move(role), std::move(content)});
  }
  RAG_ASSIGN_OR_RETURN(std::optional<bool> stream, GetOptionalBool(body, "stream"));
  call.stream = stream.value_or(false);
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    const Json& so = body["stream_options"];
    if (!so.is_object()) return InvalidArgument("stream_options must be an object");
    RAG_RETURN_IF_ERROR(CheckKnownFields(so, {"include_usage"}));
    RAG_ASSIGN_OR_RETURN(std::optional<bool> usage, GetOptionalBool(so, "include_usage"));
    call.include_usage = usage.value_or(false);
  }
  RAG_ASSIGN_OR_RETURN(std::optional<long long> n, GetOptionalInt(body, "n"));
  if (n && *n != 1) return InvalidArgument("n must be 1");
  RAG_ASSIGN_OR_RETURN(std::optional<std::string> user, GetOptionalString(body, "user"));
  (void)user;  // an end-user id for the caller's own records
  RAG_ASSIGN_OR_RETURN(std::optional<long long> max_tokens, GetOptionalInt(body, "max_tokens"));
  RAG_ASSIGN_OR_RETURN(std::optional<long long> max_completion, GetOptionalInt(body, "max_completion_tokens"));
  const std::optional<long long> limit = max_completion ? max_completion : max_tokens;
  if (limit && (*limit < 1 || *limit > kMaxChatTokens)) {
    return InvalidArgument("max_tokens must be between 1 and " + std::to_string(kMaxChatTokens));
  }
  call.max_tokens = static_cast<int>(limit.value_or(assistant.options().max_answer_tokens));
  call.query.max_answer_tokens = call.max_tokens;  // a grounded answer (rag) keeps to it too
  RAG_ASSIGN_OR_RETURN(std::optional<double> temperature, GetOptionalNumber(body, "temperature"));
  RAG_ASSIGN_OR_RETURN(std::optional<double> top_p, GetOptionalNumber(body, "top_p"));
  RAG_ASSIGN_OR_RETURN(std::optional<long long> seed, GetOptionalInt(body, "seed"));
  // OpenAI's default temperature is 1; a demanding user of a document assistant wants the
  // reproducible answer unless asking otherwise, so an absent temperature means greedy.
  call.sampling.temperature = static_cast<float>(temperature.value_or(0.0));
  call.sampling.top_p = static_cast<float>(top_p.value_or(1.0));
  call.sampling.seed = static_cast<uint64_t>(seed.value_or(0));
  RAG_RETURN_IF_ERROR(ValidateSamplingParams(call.sampling));

  if (body.contains("rag") && !body["rag"].is_null()) {
    const Json& r = body["rag"];
    if (r.is_boolean()) {
      call.rag = r.get<bool>();
    } else if (r.is_object()) {
      call.rag = true;
      RAG_RETURN_IF_ERROR(CheckKnownFields(r, {"top_k", "collection", "document_id"}));
      RAG_ASSIGN_OR_RETURN(std::optional<long long> top_k, GetOptionalInt(r, "top_k"));
      if (top_k) {
        if (*top_k < 1 || *top_k > 50) return InvalidArgument("rag.top_k must be between 1 and 50");
        call.query.top_k = static_cast<int>(*top_k);
      }
      RAG_ASSIGN_OR_RETURN(std::optional<std::string> collection, GetOptionalString(r, "collection"));
      if (collection) {
        RAG_RETURN_IF_ERROR(ValidateCollection(*collection));
        call.query.collection = *collection;
      }
      RAG_ASSIGN_OR_RETURN(std::optional<long long> document_id, GetOptionalInt(r, "document_id"));
      if (document_id) {
        if (*document_id < 1) return InvalidArgument("rag.document_id must be positive");
        call.query.document_id = *document_id;
      }
    } else {
      return InvalidArgument("rag must be true, false or an object");
    }
  }
  if (call.rag) {
    for (auto it = call.messages.rbegin(); it != call.messages.rend(); ++it) {
      if (it->role == "user") {
        call.query.question = it->content;
        break;
      }
    }
    if (call.query.question.find_first_not_of(" \t\r\n") == std::string::npos) {
      return InvalidArgument("rag needs a user message with the question");
    }
  } else if (assistant.model_name().empty()) {
    return FailedPrecondition("this server has no model: ask with \"rag\": true for answers from "
                              "the documents (extractive)");
  }
  call.id = "chatcmpl-" + std::to_string(++g_completion_ids);
  call.created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  return call;
}

Json Usage(const QueryResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens}};
}

// OpenAI's finish_reason: "stop" or "length" (extractive answers stop).
std::string FinishReason(const QueryResult& r) {
  return r.finish_reason == "length" ? "length" : "stop";
}

// The documents' part of a rag answer: passages, citations, unsupported.
void AddRagFields(const QueryResult& r, Json* out) {
  const Json q = QueryResultToJson(r);
  (*out)["passages"] = q["passages"];
  (*out)["citations"] = q["citations"];
  (*out)["unsupported"] = q["unsupported"];
}

Json Completion(const ChatCall& call, const std::string& model, const QueryResult& r) {
  Json out = {{"id", call.id},
              {"object", "chat.completion"},
              {"created", call.created},
              {"model", model},
              {"choices", Json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", r.answer.answer}}},
                                        {"finish_reason", FinishReason(r)}}})},
              {"usage", Usage(r)}};
  if (call.rag) AddRagFields(r, &out);
  return out;
}

Json Chunk(const ChatCall& call, const std::string& model, Json delta, Json finish_reason) {
  return {{"id", call.id},
          {"object", "chat.completion.chunk"},
          {"created", call.created},
          {"model", model},
          {"choices", Json::array({{{"index", 0}, {"delta", std::move(delta)},
                                    {"finish_reason", std::move(finish_reason)}}})}};
}

int StreamChat(ServerContext& ctx, const ChatCall& call, std::vector<Passage> passages, SseWriter& sse) {
  const std::string model = ModelId(ctx.assistant);
  sse.Send("", DumpJson(Chunk(call, model, {{"role", "assistant"}, {"content", ""}}, nullptr)));
  auto on_event = [&](const QueryEvent& e) {
    if (!AnswerGoesOn(ctx, sse)) return false;
    return e.kind != QueryEvent::Kind::kToken ||
           sse.Send("", DumpJson(Chunk(call, model, {{"content", e.text}}, nullptr)));
  };
  StatusOr<QueryResult> result =
      call.rag ? ctx.assistant.Answer(call.query, std::move(passages), on_event)
               : ctx.assistant.Chat(call.messages, call.max_tokens, call.sampling, on_event,
                                    call.query.cache_scope);
  if (result.ok()) {
    Json last = Chunk(call, model, Json::object(), FinishReason(*result));
    if (call.rag) AddRagFields(*result, &last);
    sse.Send("", DumpJson(last));
    if (call.include_usage) {
      Json usage = Chunk(call, model, Json::object(), nullptr);
      usage["choices"] = Json::array();
      usage["usage"] = Usage(*result);
      sse.Send("", DumpJson(usage));
    }
    sse.Send("", "[DONE]");
  } else if (AnswerGoesOn(ctx, sse)) {
    RAG_LOG(WARN) << "http: chat completion failed mid-stream: " << result.status().message();
    sse.Send("", DumpJson(ErrorJson(result.status())));
  }
  sse.End();
  return 200;
}

}  // namespace

HttpReply HandleModels(ServerContext& ctx) {
  return JsonReply(200, {{"object", "list"},
                         {"data", Json::array({{{"id", ModelId(ctx.assistant)},
                                                {"object", "model"},
                                                {"created", 0},
                                                {"owned_by", "rag"}}})}});
}

HttpReply HandleChatCompletions(ServerContext& ctx, const Pistache::Http::Request& request,
                                const Access& access) {
  StatusOr<ChatCall> call = ParseChatCall(ctx.assistant, request.body());
  if (!call.ok()) return ErrorReply(call.status());
  // As in POST /v1/query: retrieval keeps to the caller's collections.
  if (!access.all_collections) call->query.allowed_collections = access.collections;
  call->query.cache_scope = access.CacheScope();
  std::vector<Passage> passages;
  if (call->rag) {  // retrieval errors are ordinary JSON errors, before any stream starts
    StatusOr<std::vector<Passage>> found = ctx.assistant.Retrieve(call->query);
    if (!found.ok()) return ErrorReply(found.status());
    passages = std::move(*found);
  }
  HttpReply reply;
  if (call->stream) {
    reply.stream = [&ctx, call = std::move(*call), passages = std::move(passages)](SseWriter& sse) mutable {
      return StreamChat(ctx, call, std::move(passages), sse);
    };
    return reply;
  }
  auto answer = [&ctx, call = std::move(*call), passages = std::move(passages)](const GoesOnFn& goes_on) mutable {
    const QueryEventFn go_on = [&goes_on](const QueryEvent&) { return goes_on(); };
    StatusOr<QueryResult> result =
        call.rag ? ctx.assistant.Answer(call.query, std::move(passages), go_on)
                 : ctx.assistant.Chat(call.messages, call.max_tokens, call.sampling, go_on,
                                      call.query.cache_scope);
    if (!result.ok()) return ErrorReply(result.status());
    return JsonReply(200, Completion(call, ModelId(ctx.assistant), *result));
  };
  // Extractive answers (no model) are made at once; a model's on an answer thread.
  if (ctx.assistant.mode() != "model") return answer([] { return true; });
  reply.later = std::move(answer);
  return reply;
}

}  // namespace rag
