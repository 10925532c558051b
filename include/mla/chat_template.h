// Chat templates: a checkpoint's Jinja `chat_template` (tokenizer_config.json) rendered for a
// list of messages, as Hugging Face transformers' apply_chat_template renders it. The engine
// covers the Jinja2 that chat templates use (docs/chat.md lists it); a template outside it, or one
// that fails while rendering, is an mla::Error "chat template LINE:COLUMN: what and where".
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace mla {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
};

class ChatTemplate {
 public:
  // Parses `source`. bos/eos are the strings the template sees as bos_token and eos_token.
  explicit ChatTemplate(std::string_view source, std::string bos_token = {},
                        std::string eos_token = {});
  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&);
  ChatTemplate& operator=(const ChatTemplate&);
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // From a model folder (its chat_template.jinja when present, else tokenizer_config.json) or a
  // tokenizer_config.json file: `chat_template` as a string or as a list of {name, template}
  // (`name` picks one; "default" when empty), with bos_token, eos_token, pad_token and unk_token
  // (strings or {"content": ...} objects).
  static ChatTemplate from_model(const std::string& path, const std::string& name = {});
  // The same from tokenizer_config.json's text; `where` names it in errors.
  static ChatTemplate from_tokenizer_config(std::string_view json_text, const std::string& where,
                                            const std::string& name = {});

  // The prompt for `messages`; with add_generation_prompt the template's opening of the
  // assistant's answer is appended.
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
  // The same with messages as a JSON array of objects (tool_calls, reasoning and other fields the
  // template reads) and `variables_json`, an object of further template variables (tools,
  // thinking, ...).
  std::string apply_json(std::string_view messages_json, bool add_generation_prompt,
                         std::string_view variables_json = "{}") const;

  const std::string& source() const;
  const std::string& bos_token() const;
  const std::string& eos_token() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;  // immutable after construction: safe to share across threads
};

}  // namespace mla
