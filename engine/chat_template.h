// Hermes 3 prompts (ChatML): chat messages and the grounded RAG prompt of DESIGN.md section 4,
// as text and as token ids. The ids of <|begin_of_text|>, <|im_start|> and <|im_end|> come from
// the model's tokenizer (Hermes 3 puts the ChatML tokens on reserved Llama 3 slots).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/tokenizer.h"

namespace rag {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct GroundingPassage {
  std::string title;
  std::string text;
};

// The system text of the Hermes 3 grounded prompt (one line; Hermes 3 technical report, Fig. 8).
extern const char kHermesGroundedSystemPrompt[];

// "{question}\n\nCONTEXT:\nDocument:0\nTitle: {title}\nText: {passage}\n\nDocument:1\n..."
std::string GroundedUserMessage(const std::string& question, const std::vector<GroundingPassage>& passages);
// [system: kHermesGroundedSystemPrompt, user: GroundedUserMessage(...)].
std::vector<ChatMessage> GroundedMessages(const std::string& question,
                                          const std::vector<GroundingPassage>& passages);

// The prompt as text: "<|begin_of_text|>" then "<|im_start|>{role}\n{content}<|im_end|>\n" per
// message, then "<|im_start|>assistant\n" when add_generation_prompt.
std::string RenderChatMl(const std::vector<ChatMessage>& messages, bool add_generation_prompt);

class ChatTemplate {
 public:
  // NotFound naming the token when the tokenizer lacks <|begin_of_text|>, <|im_start|> or
  // <|im_end|>. The tokenizer must outlive the template.
  static StatusOr<ChatTemplate> Create(const Tokenizer& tokenizer);

  // The ids of RenderChatMl(messages, add_generation_prompt). Roles and contents are encoded as
  // plain text: a special token written inside a message stays text (no prompt injection of
  // <|im_end|>); otherwise the ids equal Encode(RenderChatMl(...)). InvalidArgument for a role
  // other than system/user/assistant or for text that is not UTF-8.
  StatusOr<std::vector<int32_t>> Encode(const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt) const;

  int32_t im_start_id() const { return im_start_; }
  int32_t im_end_id() const { return im_end_; }
  int32_t bos_id() const { return bos_; }

 private:
  ChatTemplate(const Tokenizer& tokenizer, int32_t bos, int32_t im_start, int32_t im_end)
      : tokenizer_(&tokenizer), bos_(bos), im_start_(im_start), im_end_(im_end) {}
  const Tokenizer* tokenizer_;
  int32_t bos_, im_start_, im_end_;
};

}  // namespace rag
