// OpenAI request parsing: what is accepted, and the exact message and parameter of each refusal.
#include <gtest/gtest.h>

#include "openai_api.h"

namespace mla::serve {
namespace {

ApiError refusal(const std::string& body, bool chat) {
  try {
    parse_completion_request(body, chat);
  } catch (const ApiError& e) {
    return e;
  }
  return {0, "accepted", ""};
}

TEST(OpenAiApi, ParsesACompletion) {
  const CompletionRequest r = parse_completion_request(
      R"({"model":"m","prompt":"Hello","max_tokens":5,"temperature":0,"top_p":0.9,)"
      R"("stop":["\n","END"],"seed":7,"n":1,"stream":true,"stream_options":{"include_usage":true}})",
      false);
  EXPECT_FALSE(r.chat);
  EXPECT_EQ(r.prompt, "Hello");
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_EQ(r.sampling.temperature, 0.0);
  EXPECT_EQ(r.sampling.top_p, 0.9);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_EQ(r.sampling.seed, 7u);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(OpenAiApi, ParsesAChatWithTextParts) {
  const CompletionRequest r = parse_completion_request(
      R"({"messages":[{"role":"system","content":"Be brief."},)"
      R"({"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],)"
      R"("max_completion_tokens":3})",
      true);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "Hi there");
  EXPECT_EQ(r.max_tokens, 3);
}

TEST(OpenAiApi, RefusesWithTheParameterNamed) {
  struct Case {
    const char* body;
    bool chat;
    const char* message;
    const char* param;
  };
  const Case cases[] = {
      {"{", false, "", ""},
      {"[1]", false, "the body must be a JSON object", ""},
      {R"({"prompt":"a","bogus":1})", false, "Unrecognized request argument supplied: bogus",
       "bogus"},
      {R"({"max_tokens":3})", false, "'prompt' is required", "prompt"},
      {R"({"prompt":""})", false, "'prompt' must not be empty", "prompt"},
      {R"({"prompt":7})", false, "'prompt' must be a string, got integer", "prompt"},
      {R"({"prompt":"a","max_tokens":"5"})", false, "'max_tokens' must be an integer, got string",
       "max_tokens"},
      {R"({"prompt":"a","max_tokens":0})", false,
       "'max_tokens' must be between 1 and 1073741824, got 0", "max_tokens"},
      {R"({"prompt":"a","temperature":3})", false,
       "'temperature' must be between 0.0 and 2.0, got 3", "temperature"},
      {R"({"prompt":"a","n":2})", false, "'n' must be 1 (one choice per request)", "n"},
      {R"({"prompt":"a","stop":["a","b","c","d","e"]})", false, "'stop' takes at most 4 sequences",
       "stop"},
      {R"({"prompt":"a","stream":"yes"})", false, "'stream' must be a boolean, got string",
       "stream"},
      {R"({"prompt":"a","stream_options":{"include_usage":true}})", false,
       "'stream_options' is only allowed when 'stream' is true", "stream_options"},
      {R"({"prompt":"a","logprobs":2})", false, "'logprobs' is not supported", "logprobs"},
      {R"({"prompt":"a"})", true, "Unrecognized request argument supplied: prompt", "prompt"},
      {R"({"messages":[]})", true, "'messages' must not be empty", "messages"},
      {R"({"messages":[{"role":"robot","content":"x"}]})", true,
       "'messages[0].role' must be system, user or assistant, got \"robot\"", "messages[0].role"},
      {R"({"messages":[{"role":"user"}]})", true, "'messages[0].content' is required",
       "messages[0].content"},
      {R"({"messages":[{"role":"user","content":"x","mood":1}]})", true,
       "unknown field 'messages[0].mood'", "messages[0].mood"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", true,
       "'messages[0].content[0].type' must be \"text\" (this server reads text only)",
       "messages[0].content[0].type"},
  };
  for (const Case& c : cases) {
    const ApiError e = refusal(c.body, c.chat);
    EXPECT_EQ(e.status, 400) << c.body;
    if (std::string(c.message).empty()) {
      EXPECT_NE(e.message.find("not valid JSON"), std::string::npos) << e.message;
    } else {
      EXPECT_EQ(e.message, c.message) << c.body;
    }
    EXPECT_EQ(e.param, c.param) << c.body;
  }
}

TEST(OpenAiApi, InvalidUtf8IsRefused) {
  const ApiError e = refusal("{\"prompt\":\"\xC3\x28\"}", false);
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("not valid JSON"), std::string::npos) << e.message;
}

TEST(OpenAiApi, ErrorObjectHasOpenAisShape) {
  const nlohmann::json j = ApiError{400, "bad", "top_p"}.to_json();
  EXPECT_EQ(j["error"]["message"], "bad");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "top_p");
  EXPECT_TRUE(j["error"]["code"].is_null());
}

TEST(OpenAiApi, ResponsesAndChunks) {
  CompletionRequest chat;
  chat.chat = true;
  chat.model = "m";
  const auto full = completion_response(chat, "id1", 5, {"hi", "stop", 3, 1});
  EXPECT_EQ(full["object"], "chat.completion");
  EXPECT_EQ(full["choices"][0]["message"]["content"], "hi");
  EXPECT_EQ(full["usage"]["total_tokens"], 4);
  const auto first = stream_chunk(chat, "id1", 5, "", "", true);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const auto last = stream_chunk(chat, "id1", 5, "", "length", false);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
}

}  // namespace
}  // namespace mla::serve
