#include "engine/chat_template.h"

namespace rag {

const char kHermesGroundedSystemPrompt[] =
    "You are a conversational AI assistant that is provided a list of documents and a user query to "
    "answer based on information from the documents. You should always use grounded information in "
    "your responses, only answering from what you can cite in the documents. Cite all facts from the "
    "documents using <co: doc_id></co> tags.";

namespace {
constexpr char kBeginOfText[] = "<|begin_of_text|>";
constexpr char kImStart[] = "<|im_start|>";
constexpr char kImEnd[] = "<|im_end|>";

bool KnownRole(const std::string& role) { return role == "system" || role == "user" || role == "assistant"; }
}  // namespace

std::string GroundedUserMessage(const std::string& question, const std::vector<GroundingPassage>& passages) {
  std::string out = question + "\n\nCONTEXT:\n";
  for (size_t i = 0; i < passages.size(); ++i) {
    if (i > 0) out += "\n\n";
    out += "Document:" + std::to_string(i) + "\nTitle: " + passages[i].title + "\nText: " + passages[i].text;
  }
  return out;
}

std::vector<ChatMessage> GroundedMessages(const std::string& question,
                                          const std::vector<GroundingPassage>& passages) {
  return {{"system", kHermesGroundedSystemPrompt}, {"user", GroundedUserMessage(question, passages)}};
}

std::string RenderChatMl(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out = kBeginOfText;
  for (const ChatMessage& m : messages) {
    out += std::string(kImStart) + m.role + "\n" + m.content + kImEnd + "\n";
  }
  if (add_generation_prompt) out += std::string(kImStart) + "assistant\n";
  return out;
}

StatusOr<ChatTemplate> ChatTemplate::Create(const Tokenizer& tokenizer) {
  int32_t ids[3];
  const char* names[3] = {kBeginOfText, kImStart, kImEnd};
  for (int i = 0; i < 3; ++i) {
    const auto id = tokenizer.TokenId(names[i]);
    if (!id) return NotFound(tokenizer.name() + ": no token " + names[i] + " (not a Hermes 3 / ChatML tokenizer)");
    ids[i] = *id;
  }
  return ChatTemplate(tokenizer, ids[0], ids[1], ids[2]);
}

// The stretches between special tokens are encoded separately, as Hugging Face does after
// splitting the rendered text on added tokens: "{role}\n{content}" and the "\n" after <|im_end|>.
StatusOr<std::vector<int32_t>> ChatTemplate::Encode(const std::vector<ChatMessage>& messages,
                                                    bool add_generation_prompt) const {
  std::vector<int32_t> ids = {bos_};
  auto append = [&](const std::string& text) -> Status {
    RAG_ASSIGN_OR_RETURN(auto piece, tokenizer_->Encode(text, Tokenizer::Special::kAsText));
    ids.insert(ids.end(), piece.begin(), piece.end());
    return Status::Ok();
  };
  for (const ChatMessage& m : messages) {
    if (!KnownRole(m.role)) return InvalidArgument("chat template: unknown role \"" + m.role + "\"");
    ids.push_back(im_start_);
    RAG_RETURN_IF_ERROR(append(m.role + "\n" + m.content));
    ids.push_back(im_end_);
    RAG_RETURN_IF_ERROR(append("\n"));
  }
  if (add_generation_prompt) {
    ids.push_back(im_start_);
    RAG_RETURN_IF_ERROR(append("assistant\n"));
  }
  return ids;
}

}  // namespace rag
