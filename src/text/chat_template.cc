// ChatTemplate (include/mla/chat_template.h): reading the template from a model folder and
// rendering messages with the variables transformers passes.
#include "mla/chat_template.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "io/json_text.h"
#include "mla/error.h"
#include "text/jinja.h"

namespace mla {

using nlohmann::ordered_json;

struct ChatTemplate::Impl {
  std::string source;
  jinja::Template compiled;
  std::string bos, eos;
  jinja::Dict special_tokens;  // bos_token, eos_token, pad_token, unk_token as the template sees

  Impl(std::string_view src, jinja::Dict tokens)
      : source(src), compiled(src), special_tokens(std::move(tokens)) {
    if (const jinja::Value* v = special_tokens.find("bos_token")) bos = v->s;
    if (const jinja::Value* v = special_tokens.find("eos_token")) eos = v->s;
  }
};

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A special token in tokenizer_config.json: a string, {"content": "..."} (an AddedToken), or
// null/absent (then the template sees an empty string... transformers leaves it out; an absent
// variable and '' print the same).
std::optional<std::string> token_text(const ordered_json& config, const char* key,
                                      const std::string& where) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const ordered_json& t = config[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string())
    return t["content"].get<std::string>();
  throw Error(where + ": " + key + " must be a string or an object with a string 'content', got " +
              json_text(t));
}

jinja::Dict special_tokens(const ordered_json& config, const std::string& where) {
  jinja::Dict tokens;
  for (const char* key : {"bos_token", "eos_token", "pad_token", "unk_token"}) {
    if (auto text = token_text(config, key, where)) tokens.set(key, jinja::Value::string(*text));
  }
  return tokens;
}

std::string pick_template(const ordered_json& t, const std::string& where,
                          const std::string& name) {
  if (t.is_string()) {
    if (!name.empty() && name != "default")
      throw Error(where + ": chat_template is a single template, there is no template named '" +
                  name + "'");
    return t.get<std::string>();
  }
  if (!t.is_array())
    throw Error(where + ": chat_template must be a string or a list of {name, template}, got " +
                json_text(t).substr(0, 80));
  const std::string wanted = name.empty() ? "default" : name;
  std::string names;
  for (const ordered_json& entry : t) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
        !entry.contains("template") || !entry["template"].is_string())
      throw Error(where +
                  ": each chat_template entry must be {\"name\": string, \"template\": string}");
    const std::string entry_name = entry["name"].get<std::string>();
    if (entry_name == wanted) return entry["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + entry_name;
  }
  throw Error(where + ": no chat template named '" + wanted + "' (the file has: " + names + ")");
}

jinja::Value parse_json(std::string_view text, const char* what) {
  try {
    return jinja::from_json(ordered_json::parse(text));
  } catch (const ordered_json::parse_error& e) {
    throw Error(std::string("chat: ") + what + " is not valid JSON: " + e.what());
  }
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source, std::string bos_token, std::string eos_token) {
  jinja::Dict tokens;
  tokens.set("bos_token", jinja::Value::string(std::move(bos_token)));
  tokens.set("eos_token", jinja::Value::string(std::move(eos_token)));
  impl_ = std::make_shared<const Impl>(source, std::move(tokens));
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(const ChatTemplate&) = default;
ChatTemplate& ChatTemplate::operator=(const ChatTemplate&) = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

ChatTemplate ChatTemplate::from_tokenizer_config(std::string_view json_text_in,
                                                 const std::string& where,
                                                 const std::string& name) {
  ordered_json config;
  try {
    config = ordered_json::parse(json_text_in);
  } catch (const ordered_json::parse_error& e) {
    throw Error(where + ": not valid JSON: " + e.what());
  }
  if (!config.is_object()) throw Error(where + ": must be a JSON object");
  if (!config.contains("chat_template") || config["chat_template"].is_null())
    throw Error(where + ": has no chat_template");
  const std::string source = pick_template(config["chat_template"], where, name);
  jinja::Dict tokens = special_tokens(config, where);
  ChatTemplate t("");
  try {
    t.impl_ = std::make_shared<const Impl>(source, std::move(tokens));
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return t;
}

ChatTemplate ChatTemplate::from_model(const std::string& path, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (!fs::is_directory(p)) return from_tokenizer_config(read_file(p), path, name);
  const fs::path config = p / "tokenizer_config.json";
  const fs::path jinja_file = p / "chat_template.jinja";
  if (fs::exists(jinja_file) && (name.empty() || name == "default")) {
    // Newer transformers save the template beside the config; the tokens stay in the config.
    jinja::Dict tokens;
    if (fs::exists(config)) {
      ordered_json c;
      try {
        c = ordered_json::parse(read_file(config));
      } catch (const ordered_json::parse_error& e) {
        throw Error(config.string() + ": not valid JSON: " + e.what());
      }
      if (c.is_object()) tokens = special_tokens(c, config.string());
    }
    ChatTemplate t("");
    try {
      t.impl_ = std::make_shared<const Impl>(read_file(jinja_file), std::move(tokens));
    } catch (const Error& e) {
      throw Error(jinja_file.string() + ": " + e.what());
    }
    return t;
  }
  if (!fs::exists(config)) throw Error(path + ": no tokenizer_config.json or chat_template.jinja");
  return from_tokenizer_config(read_file(config), config.string(), name);
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages,
                                bool add_generation_prompt) const {
  jinja::List list;
  for (const ChatMessage& m : messages) {
    jinja::Dict d;
    d.set("role", jinja::Value::string(m.role));
    d.set("content", jinja::Value::string(m.content));
    list.push_back(jinja::Value::make_dict(std::move(d)));
  }
  jinja::Dict vars = impl_->special_tokens;
  vars.set("messages", jinja::Value::make_list(std::move(list)));
  vars.set("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  vars.set("tools", jinja::Value::none());
  vars.set("documents", jinja::Value::none());
  return impl_->compiled.render(vars);
}

std::string ChatTemplate::apply_json(std::string_view messages_json, bool add_generation_prompt,
                                     std::string_view variables_json) const {
  const jinja::Value messages = parse_json(messages_json, "messages");
  if (messages.kind != jinja::Value::Kind::kList)
    throw Error("chat: messages must be a JSON array");
  for (const jinja::Value& m : *messages.list) {
    if (m.kind != jinja::Value::Kind::kDict)
      throw Error("chat: each message must be a JSON object");
  }
  const jinja::Value extra = parse_json(variables_json, "template variables");
  if (extra.kind != jinja::Value::Kind::kDict)
    throw Error("chat: template variables must be a JSON object");
  jinja::Dict vars = impl_->special_tokens;
  vars.set("tools", jinja::Value::none());
  vars.set("documents", jinja::Value::none());
  for (const auto& [k, v] : extra.dict->items) vars.set(k, v);
  vars.set("messages", messages);
  vars.set("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  return impl_->compiled.render(vars);
}

const std::string& ChatTemplate::source() const {
  return impl_->source;
}
const std::string& ChatTemplate::bos_token() const {
  return impl_->bos;
}
const std::string& ChatTemplate::eos_token() const {
  return impl_->eos;
}

}  // namespace mla
