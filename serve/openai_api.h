// The OpenAI request and response formats the server speaks: parsing with validation (every
// problem named, as OpenAI's error objects do), and the JSON of responses, stream chunks and
// errors. No I/O here, so all of it is testable without a socket.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "text_model.h"

namespace mla::serve {

// A request the server refuses: HTTP status, message, and the offending parameter.
struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // "" when no single parameter is at fault
  std::string type = "invalid_request_error";
  nlohmann::json to_json() const;
};

struct SamplingRequest {
  double temperature = 1.0;  // 0: greedy
  double top_p = 1.0;
  int64_t top_k = 0;  // extension (llama.cpp's server has it too); 0: off
  double min_p = 0.0;
  double repeat_penalty = 1.0;
  std::optional<uint64_t> seed;
};

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::string prompt;                 // completions
  std::vector<ChatMessage> messages;  // chat completions
  int64_t max_tokens = -1;            // -1: not given (the server picks)
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  SamplingRequest sampling;
};

// Throws ApiError. `chat` selects /v1/chat/completions rules.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

struct CompletionResult {
  std::string text;
  std::string finish_reason;  // "stop", "length"
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

nlohmann::json completion_response(const CompletionRequest& request, const std::string& id,
                                   int64_t created, const CompletionResult& result);
// One server-sent event's data for a stream chunk; finish_reason empty while streaming. For
// chat, `first` adds the assistant role delta.
nlohmann::json stream_chunk(const CompletionRequest& request, const std::string& id,
                            int64_t created, const std::string& text,
                            const std::string& finish_reason, bool first);
nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

}  // namespace mla::serve
