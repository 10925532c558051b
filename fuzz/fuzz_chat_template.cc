// Any text as a chat template, rendered for a conversation with tool calls: the engine either
// renders or throws mla::Error, within its step and size bounds. The same bytes also go through
// Utf8Stream in chunks (its output must be valid UTF-8 and independent of the chunking) and
// StopMatcher (what it emits never contains a stop string).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mla/chat_template.h"
#include "mla/error.h"
#include "mla/text_stream.h"

namespace {

constexpr const char* kMessages = R"([
  {"role": "system", "content": "Be brief."},
  {"role": "user", "content": "Weather in Paris? 你好 😀"},
  {"role": "assistant", "content": null, "tool_calls": [
    {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
  {"role": "tool", "content": "{\"temp\": 21}"},
  {"role": "assistant", "content": "<think>hm</think>21 degrees."}])";

std::string streamed(const std::string& bytes, size_t chunk) {
  mla::Utf8Stream s;
  std::string out;
  for (size_t k = 0; k < bytes.size(); k += chunk) s.push(bytes.substr(k, chunk), out);
  s.finish(out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const mla::ChatTemplate t(text, "<bos>", "<eos>");
    (void)t.apply_json(kMessages, true, R"({"tools": [{"name": "f"}], "thinking": true})");
  } catch (const mla::Error&) {
  }
  const std::string whole = streamed(text, text.size() + 1);
  if (streamed(text, 1) != whole || streamed(text, 3) != whole) std::abort();
  if (streamed(whole, 2) != whole) std::abort();  // valid UTF-8 passes through unchanged
  mla::StopMatcher stop({"</s>", "ab"});
  std::string shown;
  for (size_t k = 0; k < whole.size(); k += 5) {
    const mla::StopMatcher::Result r = stop.push(whole.substr(k, 5));
    shown += r.text;
    if (r.stopped) break;
  }
  shown += stop.finish();
  if (shown.find("</s>") != std::string::npos || shown.find("ab") != std::string::npos)
    std::abort();
  return 0;
}
