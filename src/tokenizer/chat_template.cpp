#include "tokenizer/chat_template.h"

#include <fmt/format.h>

namespace frugal {

std::string apply_chat_template_chatml(const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, std::string_view default_system) {
  std::string out;
  if (!default_system.empty() && (messages.empty() || messages.front().role != "system")) {
    out += "<|im_start|>system\n";
    out += default_system;
    out += "<|im_end|>\n";
  }
  for (const ChatMessage& m : messages) {
    out += "<|im_start|>";
    out += m.role;
    out += '\n';
    out += m.content;
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

Result<ChatTemplate> ChatTemplate::parse(std::string_view jinja) {
  if (jinja.empty()) return NotFound("the model has no chat template");
  static constexpr std::string_view kStart = "<|im_start|>", kEnd = "<|im_end|>";
  if (jinja.find(kStart) == std::string_view::npos || jinja.find(kEnd) == std::string_view::npos) {
    std::string head(jinja.substr(0, 80));
    for (char& c : head)
      if (c == '\n') c = ' ';
    return Unsupported(fmt::format("chat template is not ChatML (frugal does not run Jinja): '{}...'",
                                   head));
  }
  ChatTemplate t;
  // A default system prompt is a literal "<|im_start|>system\n...<|im_end|>" inside the template,
  // inserted only when the first message is not a system message.
  static constexpr std::string_view kSystem = "<|im_start|>system\n";
  const size_t s = jinja.find(kSystem);
  if (s != std::string_view::npos) {
    const size_t b = s + kSystem.size();
    const size_t e = jinja.find(kEnd, b);
    if (e != std::string_view::npos) {
      const std::string_view text = jinja.substr(b, e - b);
      if (text.find("{{") == std::string_view::npos && text.find("{%") == std::string_view::npos &&
          text.find('\'') == std::string_view::npos)
        t.default_system = std::string(text);
    }
  }
  return t;
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) const {
  return apply_chat_template_chatml(messages, add_generation_prompt, default_system);
}

}  // namespace frugal
