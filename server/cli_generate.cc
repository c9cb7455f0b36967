// `rag generate --model DIR|FILE.gguf`: a prompt on stdin, the model's continuation on stdout, through
// the engine (scheduler, paged KV cache, sampler) on the CPU backend. --raw feeds the text
// tokenized exactly as given (no BOS, no chat template); otherwise the text is the user turn of
// a ChatML prompt (without <|begin_of_text|> when the tokenizer has none, as SmolLM2) and
// generation stops at <|im_end|>. --json prints
// {"prompt_ids","ids","text","finish_reason"}; otherwise the text streams as it is generated.
// --stop STR (repeatable) ends generation before the first occurrence of STR in the text.
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <mutex>
#include <string>

#include "common/json_util.h"
#include "server/cli_commands.h"

#ifdef RAG_HAVE_TOKENIZER
#include "engine/chat_template.h"
#include "engine/engine.h"
#include "engine/model_loader.h"
#include "engine/stop_strings.h"
#include "engine/tokenizer.h"
#include "server/model_device.h"
#endif

namespace rag {

#ifdef RAG_HAVE_TOKENIZER
namespace {

int Fail(const Status& st) {
  std::fprintf(stderr, "rag generate: %s\n", st.message().c_str());
  return 1;
}

// Collects the events of one request; the engine thread fills it, the main thread waits.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> ids;
  bool done = false;
  FinishReason reason = FinishReason::kNone;
  Status error;
};

// ChatML ids of one user turn for tokenizers without <|begin_of_text|> (SmolLM2): the same as
// ChatTemplate::Encode minus the BOS, the user text encoded as plain text.
StatusOr<std::vector<int32_t>> ChatMlWithoutBos(const Tokenizer& tok, const std::string& text) {
  const auto im_start = tok.TokenId("<|im_start|>"), im_end = tok.TokenId("<|im_end|>");
  if (!im_start || !im_end) return NotFound("the model's tokenizer has no <|im_start|>/<|im_end|> (use --raw)");
  std::vector<int32_t> ids{*im_start};
  for (const auto& [piece, end_turn] : {std::pair<std::string, bool>{"user\n" + text, true},
                                        {"\n", false}}) {
    RAG_ASSIGN_OR_RETURN(auto part, tok.Encode(piece, Tokenizer::Special::kAsText));
    ids.insert(ids.end(), part.begin(), part.end());
    if (end_turn) ids.push_back(*im_end);
  }
  ids.push_back(*im_start);
  RAG_ASSIGN_OR_RETURN(auto assistant, tok.Encode("assistant\n", Tokenizer::Special::kAsText));
  ids.insert(ids.end(), assistant.begin(), assistant.end());
  return ids;
}

}  // namespace

int RunGenerateCommand(const GenerateFlags& flags) {
  CpuBackendOptions backend_options;
  backend_options.num_threads = flags.threads;
  auto load = ModelLoadOptionsFor(flags.device, backend_options, flags.gpu);
  if (!load.ok()) return Fail(load.status());
  auto model = LoadModel(flags.model_dir, *load);
  if (!model.ok()) return Fail(model.status());
  const std::unique_ptr<Tokenizer>* tokenizer = &model->tokenizer;
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());

  GenerationRequest request;
  if (flags.raw) {
    auto ids = (*tokenizer)->Encode(text);
    if (!ids.ok()) return Fail(ids.status().WithPrefix("stdin"));
    request.prompt = std::move(*ids);
  } else {
    auto chat = ChatTemplate::Create(**tokenizer);
    auto ids = chat.ok() ? chat->Encode({{"user", text}}, /*add_generation_prompt=*/true)
                         : ChatMlWithoutBos(**tokenizer, text);
    if (!ids.ok()) return Fail(ids.status().WithPrefix("stdin"));
    request.prompt = std::move(*ids);
    request.stop_token_ids.push_back(*(*tokenizer)->TokenId("<|im_end|>"));
  }
  if (request.prompt.empty()) return Fail(InvalidArgument("the prompt on stdin is empty"));
  request.max_tokens = flags.max_tokens;
  request.sampling.temperature = flags.temperature;
  request.sampling.top_k = flags.top_k;
  request.sampling.top_p = flags.top_p;
  request.sampling.seed = flags.seed;

  const EngineOptions engine_options = EngineOptions::For(model->backend->info());
  Engine engine(std::move(model->backend), engine_options);

  Collector c;
  StreamingDecoder stream(**tokenizer);
  const std::vector<int32_t> stops = request.stop_token_ids;
  const ModelConfig& cfg = engine.config();
  auto is_stop = [&](int32_t id) {
    return std::find(stops.begin(), stops.end(), id) != stops.end() ||
           std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), id) != cfg.eos_token_ids.end();
  };
  const std::vector<int32_t> prompt = request.prompt;
  // Text goes through the stop strings before it is shown; the ids are kept whole.
  StopStringMatcher stop_strings(flags.stop);
  std::string shown;
  size_t printed = 0;  // bytes of `shown` already written (non-JSON mode streams as it goes)
  auto id = engine.Submit(std::move(request), [&](const TokenEvent& e) {
    bool keep_going = true;
    if (e.token >= 0 && !is_stop(e.token)) {
      const std::string piece = stop_strings.Feed(stream.Feed(e.token));
      keep_going = !stop_strings.stopped();
      shown += piece;
      if (!flags.json) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        printed += piece.size();
      }
    }
    std::lock_guard<std::mutex> lock(c.mu);
    if (e.token >= 0) c.ids.push_back(e.token);
    if (e.finished) {
      c.done = true;
      c.reason = e.reason;
      c.error = e.error;
      c.cv.notify_all();
    }
    return keep_going;
  });
  if (!id.ok()) return Fail(id.status());
  std::unique_lock<std::mutex> lock(c.mu);
  c.cv.wait(lock, [&] { return c.done; });
  if (c.reason == FinishReason::kError) return Fail(c.error);

  if (!stop_strings.stopped()) shown += stop_strings.Feed(stream.Flush()) + stop_strings.Flush();
  if (flags.json) {
    Json out = {{"prompt_ids", prompt},
                {"ids", c.ids},
                {"text", shown},
                {"finish_reason", FinishReasonName(c.reason)}};
    // Invalid UTF-8 from a half character at the end is replaced, not a crash.
    std::printf("%s\n", out.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s\n", shown.substr(std::min(shown.size(), printed)).c_str());
  }
  return 0;
}

#else

int RunGenerateCommand(const GenerateFlags&) {
  std::fprintf(stderr, "rag generate: this build has no tokenizer (libpcre2-8 was not found)\n");
  return 1;
}

#endif

}  // namespace rag
