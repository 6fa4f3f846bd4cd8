// Chat prompts. frugal does not run Jinja: it recognises the ChatML family of templates
// ("<|im_start|>role\ncontent<|im_end|>\n", as SmolLM2 and Qwen use) and renders them directly.
// Any other template is reported as Unsupported.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace frugal {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// ChatML rendering. When `default_system` is not empty and the first message is not a system
// message, "<|im_start|>system\n" + default_system + "<|im_end|>\n" comes first. Each message is
// "<|im_start|>" + role + "\n" + content + "<|im_end|>\n"; the generation prompt appends
// "<|im_start|>assistant\n".
std::string apply_chat_template_chatml(const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, std::string_view default_system);

enum class ChatTemplateKind { kChatML };

struct ChatTemplate {
  ChatTemplateKind kind = ChatTemplateKind::kChatML;
  // The system prompt the template inserts when the conversation has none (SmolLM2: "You are a
  // helpful AI assistant named SmolLM, trained by Hugging Face"); empty if it inserts none.
  std::string default_system;

  // Recognises a Jinja chat template. Unsupported (quoting its start) unless it is ChatML; an empty
  // template is NotFound.
  static Result<ChatTemplate> parse(std::string_view jinja);
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
};

}  // namespace frugal
