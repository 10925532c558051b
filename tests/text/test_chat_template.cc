// ChatTemplate: reading tokenizer_config.json (string or named-list templates, AddedToken
// special tokens, chat_template.jinja beside it), rendering with the generation prompt, and the
// exact errors of bad templates and files. tests/text/test_chat_template.py compares renderings
// with Python's jinja2 on DeepSeek's real template and many constructs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mla/chat_template.h"
#include "mla/error.h"
#include "test_util.h"

namespace mla {
namespace {

// A template in the style of DeepSeek's (written for this test): system prompts joined, roles
// as markers, the reasoning before </think> dropped from earlier answers.
const char* const kTemplate =
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif "
    "%}"
    "{%- set ns = namespace(system='', first=true) -%}\n"
    "{%- for m in messages if m.role == 'system' -%}\n"
    "  {%- set ns.system = ns.system + ('' if loop.first else '\\n') + m.content -%}\n"
    "{%- endfor -%}\n"
    "{{ bos_token }}{{ ns.system }}\n"
    "{%- for m in messages -%}\n"
    "  {%- if m['role'] == 'user' %}<U>{{ m['content'] }}\n"
    "  {%- elif m['role'] == 'assistant' -%}\n"
    "    {%- set content = m['content'] -%}\n"
    "    {%- if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif "
    "-%}\n"
    "    <A>{{ content | trim }}{{ eos_token }}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{% if add_generation_prompt %}<A>{% endif %}\n";

using test::error_of;

TEST(ChatTemplate, RendersMessagesWithTheGenerationPrompt) {
  const ChatTemplate t(kTemplate, "<bos>", "<eos>");
  const std::vector<ChatMessage> messages = {{"system", "Be brief."},
                                             {"user", "Hi"},
                                             {"assistant", "hmm</think> Hello! "},
                                             {"system", "No emoji."},
                                             {"user", "你好"}};
  EXPECT_EQ(t.apply(messages, true), "<bos>Be brief.\nNo emoji.<U>Hi<A>Hello!<eos><U>你好<A>");
  EXPECT_EQ(t.apply(messages, false), "<bos>Be brief.\nNo emoji.<U>Hi<A>Hello!<eos><U>你好");
  EXPECT_EQ(t.apply({}, true), "<bos><A>");
  EXPECT_EQ(t.apply_json(R"([{"role": "user", "content": "x", "extra": [1, 2]}])", false),
            "<bos><U>x");
}

TEST(ChatTemplate, ReadsTokenizerConfigInBothForms) {
  nlohmann::json config = {
      {"bos_token", {{"__type", "AddedToken"}, {"content", "<｜begin▁of▁sentence｜>"}}},
      {"eos_token", "<｜end▁of▁sentence｜>"},
      {"chat_template",
       "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}"}};
  const std::vector<ChatMessage> one = {{"user", "hi"}};
  const ChatTemplate a = ChatTemplate::from_tokenizer_config(config.dump(), "cfg");
  EXPECT_EQ(a.bos_token(), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(a.apply(one, false), "<｜begin▁of▁sentence｜>hi<｜end▁of▁sentence｜>");

  config["chat_template"] =
      nlohmann::json::array({{{"name", "default"}, {"template", "D{{ messages|length }}"}},
                             {{"name", "tool_use"}, {"template", "T{{ tools|tojson }}"}}});
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(config.dump(), "cfg").apply(one, true), "D1");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(config.dump(), "cfg", "tool_use")
                .apply_json("[]", false, R"({"tools": [{"name": "f"}]})"),
            R"(T[{"name": "f"}])");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_tokenizer_config(config.dump(), "cfg", "rag"); }),
            "cfg: no chat template named 'rag' (the file has: default, tool_use)");

  // A folder: chat_template.jinja beside tokenizer_config.json wins, tokens from the config.
  const auto dir = std::filesystem::temp_directory_path() / "mla_chat_template_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << config.dump();
  EXPECT_EQ(ChatTemplate::from_model(dir.string()).apply(one, false), "D1");
  std::ofstream(dir / "chat_template.jinja") << "J{{ bos_token }}\n";
  EXPECT_EQ(ChatTemplate::from_model(dir.string()).apply(one, false), "J<｜begin▁of▁sentence｜>");
  std::filesystem::remove_all(dir);
}

TEST(ChatTemplate, BadFilesAndTemplatesNameWhatAndWhere) {
  EXPECT_EQ(
      error_of([] { ChatTemplate::from_tokenizer_config("{\"bos_token\": \"<s>\"}", "cfg.json"); }),
      "cfg.json: has no chat_template");
  EXPECT_EQ(error_of([] { ChatTemplate::from_tokenizer_config("[1]", "cfg.json"); }),
            "cfg.json: must be a JSON object");
  EXPECT_EQ(
      error_of([] { ChatTemplate::from_tokenizer_config(R"({"chat_template": 3})", "cfg.json"); }),
      "cfg.json: chat_template must be a string or a list of {name, template}, got 3");
  EXPECT_EQ(error_of([] {
              ChatTemplate::from_tokenizer_config(R"({"chat_template": "a\n  {% foo %}"})",
                                                  "cfg.json");
            }),
            "cfg.json: chat template 2:6: unknown or unsupported tag 'foo'");
  EXPECT_EQ(error_of([] {
              ChatTemplate::from_tokenizer_config(R"({"chat_template": "x", "eos_token": 5})", "c");
            }),
            "c: eos_token must be a string or an object with a string 'content', got 5");
  EXPECT_EQ(error_of([] { ChatTemplate::from_model("/nonexistent/mla"); }),
            "/nonexistent/mla: cannot open");

  const struct {
    const char* source;
    const char* error;
  } cases[] = {
      {"{% if messages %}x", "chat template 1:4: missing '{% endif %}' for the block opened here"},
      {"{{ messages | shout }}", "chat template 1:15: unknown filter 'shout'"},
      {"{% for m in messages %}{{ m.content + 1 }}{% endfor %}",
       "chat template 1:37: can only concatenate str (not \"int\") to str"},
      {"\n\n   {{ raise_exception('Only user and assistant roles are supported') }}",
       "chat template 3:7: raise_exception: Only user and assistant roles are supported"},
      {"{{ nothing.here }}", "chat template 1:4: 'nothing' is undefined"},
      {"{{ 9223372036854775807 + 1 }}",
       "chat template 1:24: integer overflow in '+' (the result needs more than 64 bits)"},
      {"{{ messages.99999999999999999999 }}",
       "chat template 1:13: integer literal 99999999999999999999 does not fit in 64 bits"},
      {"{{ 3 ** 64 }}",
       "chat template 1:6: integer overflow in '**' (the result needs more than 64 bits)"},
      {"{% set x = 1 %}{% set x.y = 2 %}",
       "chat template 1:19: cannot assign attribute 'y' on non-namespace object 'x'"},
      {"{{ 'abc }}", "chat template 1:4: unterminated string literal"},
      {"{% call f() %}{% endcall %}", "chat template 1:4: unknown or unsupported tag 'call'"},
      {"{% endfor %}", "chat template 1:4: 'endfor' without an open block it could close"},
      {"{{ messages is shiny }}", "chat template 1:16: unknown test 'shiny'"},

  };
  const std::vector<ChatMessage> one = {{"user", "hi"}};
  for (const auto& c : cases) {
    EXPECT_EQ(error_of([&] { ChatTemplate(c.source).apply(one, true); }), c.error) << c.source;
  }
  // Hostile nesting is an error, not a stack overflow (each parenthesis is three parser levels).
  const std::string deep = "{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}";
  EXPECT_EQ(error_of([&] { ChatTemplate t(deep); }),
            "chat template 1:70: nested deeper than 200 parser levels");
  EXPECT_EQ(error_of([] { ChatTemplate("x").apply_json("{}", true); }),
            "chat: messages must be a JSON array");
  EXPECT_EQ(error_of([] { ChatTemplate("x").apply_json("[1]", true); }),
            "chat: each message must be a JSON object");
}

}  // namespace
}  // namespace mla
