// Any bytes as text to encode with a DeepSeek-style tokenizer: invalid UTF-8 is an mla::Error at
// the first bad byte; valid text encodes to ids that decode (at once and streamed token by token)
// to exactly the same bytes (nothing is dropped, truncated or altered).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mla/error.h"
#include "mla/tokenizer.h"
#include "text/utf8.h"
#include "tokenizer_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mla::Tokenizer tokenizer = mla::Tokenizer::from_json(fuzz_tokenizer_json(), "");
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool valid = mla::text::first_invalid_utf8(text) == std::string::npos;
  try {
    const auto ids = tokenizer.encode(text);
    if (!valid) std::abort();
    if (tokenizer.decode(ids) != text) std::abort();
    mla::TokenStream stream(tokenizer);
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.push(id);
    if (streamed + stream.finish() != text) std::abort();
  } catch (const mla::Error&) {
    if (valid) std::abort();
  }
  if (!valid && mla::text::utf8_lossy(text) == text) std::abort();
  return 0;
}
