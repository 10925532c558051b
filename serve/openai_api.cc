#include "openai_api.h"

#include <cmath>
#include <set>

namespace mla::serve {
namespace {

using nlohmann::json;

[[noreturn]] void refuse(const std::string& message, const std::string& param = {}) {
  throw ApiError{400, message, param};
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::number_float:
      return "number";
    default:
      return "integer";
  }
}

[[noreturn]] void wrong_type(const std::string& param, const char* expected, const json& v) {
  refuse("'" + param + "' must be " + expected + ", got " + type_name(v), param);
}

double number_in(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) wrong_type(param, "a number", v);
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    refuse("'" + param + "' must be between " + json(lo).dump() + " and " + json(hi).dump() +
               ", got " + v.dump(),
           param);
  }
  return x;
}

int64_t integer_in(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) wrong_type(param, "an integer", v);
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) {
    refuse("'" + param + "' must be at most " + std::to_string(hi) + ", got " + v.dump(), param);
  }
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) {
    refuse("'" + param + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
               ", got " + v.dump(),
           param);
  }
  return x;
}

std::string text_of(const json& v, const std::string& param) {
  if (!v.is_string()) wrong_type(param, "a string", v);
  return v.get<std::string>();
}

// Message content: a string, or OpenAI's list of parts of which only text parts are served.
std::string content_of(const json& v, const std::string& param) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) wrong_type(param, "a string or an array of text parts", v);
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const json& part = v[i];
    if (!part.is_object()) wrong_type(p, "an object", part);
    if (!part.contains("type") || part["type"] != "text") {
      refuse("'" + p + ".type' must be \"text\" (this server reads text only)", p + ".type");
    }
    if (!part.contains("text")) refuse("'" + p + ".text' is required", p + ".text");
    text += text_of(part["text"], p + ".text");
  }
  return text;
}

std::vector<ChatMessage> messages_of(const json& v) {
  if (!v.is_array()) wrong_type("messages", "an array", v);
  if (v.empty()) refuse("'messages' must not be empty", "messages");
  static const std::set<std::string> kRoles = {"system", "user", "assistant", "developer"};
  static const std::set<std::string> kFields = {"role", "content", "name"};
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = "messages[" + std::to_string(i) + "]";
    const json& m = v[i];
    if (!m.is_object()) wrong_type(p, "an object", m);
    for (const auto& [key, value] : m.items()) {
      if (!kFields.contains(key)) refuse("unknown field '" + p + "." + key + "'", p + "." + key);
    }
    if (!m.contains("role")) refuse("'" + p + ".role' is required", p + ".role");
    std::string role = text_of(m["role"], p + ".role");
    if (!kRoles.contains(role)) {
      refuse("'" + p + ".role' must be system, user or assistant, got \"" + role + "\"",
             p + ".role");
    }
    if (role == "developer") role = "system";
    if (!m.contains("content")) refuse("'" + p + ".content' is required", p + ".content");
    out.push_back({role, content_of(m["content"], p + ".content")});
  }
  return out;
}

std::vector<std::string> stops_of(const json& v) {
  if (v.is_null()) return {};
  if (v.is_string()) {
    if (v.get<std::string>().empty()) refuse("'stop' strings must not be empty", "stop");
    return {v.get<std::string>()};
  }
  if (!v.is_array()) wrong_type("stop", "a string or an array of strings", v);
  if (v.size() > 4) refuse("'stop' takes at most 4 sequences", "stop");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    out.push_back(text_of(v[i], "stop[" + std::to_string(i) + "]"));
    if (out.back().empty()) refuse("'stop' strings must not be empty", "stop");
  }
  return out;
}

}  // namespace

json ApiError::to_json() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", nullptr}}}};
}

CompletionRequest parse_completion_request(const std::string& body, bool chat) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    refuse(std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) refuse("the body must be a JSON object");
  // Fields of OpenAI's API we serve, and ones we accept only at their neutral value.
  static const std::set<std::string> kCommon = {"model",
                                                "max_tokens",
                                                "temperature",
                                                "top_p",
                                                "stop",
                                                "seed",
                                                "n",
                                                "stream",
                                                "stream_options",
                                                "user",
                                                "top_k",
                                                "min_p",
                                                "repeat_penalty",
                                                "presence_penalty",
                                                "frequency_penalty",
                                                "logprobs"};
  static const std::set<std::string> kCompletion = {"prompt", "echo", "suffix", "best_of"};
  static const std::set<std::string> kChat = {"messages", "max_completion_tokens"};
  for (const auto& [key, value] : j.items()) {
    if (!kCommon.contains(key) && !(chat ? kChat : kCompletion).contains(key)) {
      refuse("Unrecognized request argument supplied: " + key, key);
    }
  }
  CompletionRequest r;
  r.chat = chat;
  if (j.contains("model")) r.model = text_of(j["model"], "model");
  if (chat) {
    if (!j.contains("messages")) refuse("'messages' is required", "messages");
    r.messages = messages_of(j["messages"]);
  } else {
    if (!j.contains("prompt")) refuse("'prompt' is required", "prompt");
    const json& p = j["prompt"];
    if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt = p[0].get<std::string>();
    } else if (p.is_array()) {
      refuse(
          "'prompt' must be one string (batches of prompts are not served; send one request "
          "each)",
          "prompt");
    } else {
      r.prompt = text_of(p, "prompt");
    }
    if (r.prompt.empty()) refuse("'prompt' must not be empty", "prompt");
    if (j.contains("echo") && j["echo"] != false) refuse("'echo' is not supported", "echo");
    if (j.contains("suffix") && !j["suffix"].is_null()) {
      refuse("'suffix' is not supported", "suffix");
    }
    if (j.contains("best_of") && j["best_of"] != 1) refuse("'best_of' must be 1", "best_of");
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (j.contains(key) && !j[key].is_null()) {
      r.max_tokens = integer_in(j[key], key, 1, int64_t{1} << 30);
    }
  }
  SamplingRequest& s = r.sampling;
  if (j.contains("temperature") && !j["temperature"].is_null()) {
    s.temperature = number_in(j["temperature"], "temperature", 0.0, 2.0);
  }
  if (j.contains("top_p") && !j["top_p"].is_null()) {
    s.top_p = number_in(j["top_p"], "top_p", 0.0, 1.0);
    if (s.top_p == 0.0) refuse("'top_p' must be greater than 0", "top_p");
  }
  if (j.contains("top_k") && !j["top_k"].is_null()) {
    s.top_k = integer_in(j["top_k"], "top_k", 0, int64_t{1} << 30);
  }
  if (j.contains("min_p") && !j["min_p"].is_null()) {
    s.min_p = number_in(j["min_p"], "min_p", 0.0, 1.0);
  }
  if (j.contains("repeat_penalty") && !j["repeat_penalty"].is_null()) {
    s.repeat_penalty = number_in(j["repeat_penalty"], "repeat_penalty", 0.01, 100.0);
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (j.contains(key) && !j[key].is_null() && number_in(j[key], key, -2.0, 2.0) != 0.0) {
      refuse(std::string("'") + key + "' is not supported (use repeat_penalty)", key);
    }
  }
  if (j.contains("logprobs") && !j["logprobs"].is_null() && j["logprobs"] != false) {
    refuse("'logprobs' is not supported", "logprobs");
  }
  if (j.contains("seed") && !j["seed"].is_null()) {
    const json& v = j["seed"];
    if (!v.is_number_integer() && !v.is_number_unsigned()) wrong_type("seed", "an integer", v);
    s.seed = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
  }
  if (j.contains("n") && !j["n"].is_null() && integer_in(j["n"], "n", 1, 128) != 1) {
    refuse("'n' must be 1 (one choice per request)", "n");
  }
  if (j.contains("stop")) r.stop = stops_of(j["stop"]);
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) wrong_type("stream", "a boolean", j["stream"]);
    r.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const json& o = j["stream_options"];
    if (!o.is_object()) wrong_type("stream_options", "an object", o);
    if (!r.stream)
      refuse("'stream_options' is only allowed when 'stream' is true", "stream_options");
    for (const auto& [key, value] : o.items()) {
      if (key != "include_usage") {
        refuse("unknown field 'stream_options." + key + "'", "stream_options." + key);
      }
      if (!value.is_boolean()) wrong_type("stream_options.include_usage", "a boolean", value);
      r.include_usage = value.get<bool>();
    }
  }
  if (j.contains("user") && !j["user"].is_null()) text_of(j["user"], "user");
  return r;
}

json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json completion_response(const CompletionRequest& request, const std::string& id, int64_t created,
                         const CompletionResult& result) {
  json choice = {{"index", 0}, {"finish_reason", result.finish_reason}};
  if (request.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", result.text}};
  } else {
    choice["text"] = result.text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", id},
          {"object", request.chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", request.model},
          {"choices", json::array({choice})},
          {"usage", usage_json(result.prompt_tokens, result.completion_tokens)}};
}

json stream_chunk(const CompletionRequest& request, const std::string& id, int64_t created,
                  const std::string& text, const std::string& finish_reason, bool first) {
  json choice = {{"index", 0},
                 {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  if (request.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && finish_reason.empty())) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", id},
          {"object", request.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", request.model},
          {"choices", json::array({choice})}};
}

}  // namespace mla::serve
