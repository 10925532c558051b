// Test-only program for tests/text/test_chat_template.py: reads cases as JSON on stdin and
// prints one JSON result per case, so that Python can compare them with jinja2 and with Python's
// own UTF-8 decoder in one process start.
//   {"template": T, "variables": {...}}          -> {"text": rendering} or {"error": message}
//   {"tokenizer_config": PATH, "messages": [...], "add_generation_prompt": B, "variables": {...}}
//   {"utf8_chunks": ["hex", ...]}                 -> {"text": what Utf8Stream emits in total}
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "mla/chat_template.h"
#include "mla/error.h"
#include "mla/text_stream.h"
#include "text/jinja.h"

namespace {

using nlohmann::ordered_json;

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t k = 0; k + 1 < hex.size(); k += 2)
    out += static_cast<char>(std::stoi(hex.substr(k, 2), nullptr, 16));
  return out;
}

ordered_json run_case(const ordered_json& c) {
  if (c.contains("utf8_chunks")) {
    mla::Utf8Stream stream;
    std::string text;
    for (const auto& chunk : c["utf8_chunks"])
      text += stream.push(from_hex(chunk.get<std::string>()));
    text += stream.finish();
    return {{"text", text}};
  }
  if (c.contains("tokenizer_config")) {
    const mla::ChatTemplate t =
        mla::ChatTemplate::from_model(c["tokenizer_config"].get<std::string>());
    return {{"text", t.apply_json(c["messages"].dump(), c.value("add_generation_prompt", false),
                                  c.value("variables", ordered_json::object()).dump())}};
  }
  const mla::jinja::Template t(c["template"].get<std::string>());
  const mla::jinja::Value vars =
      mla::jinja::from_json(c.value("variables", ordered_json::object()));
  return {{"text", t.render(*vars.dict)}};
}

}  // namespace

int main() {
  const std::string input((std::istreambuf_iterator<char>(std::cin)),
                          std::istreambuf_iterator<char>());
  const ordered_json cases = ordered_json::parse(input);
  ordered_json results = ordered_json::array();
  for (const auto& c : cases) {
    try {
      results.push_back(run_case(c));
    } catch (const mla::Error& e) {
      results.push_back({{"error", e.what()}});
    }
  }
  std::cout << results.dump(-1, ' ', false, ordered_json::error_handler_t::replace) << "\n";
  return 0;
}
