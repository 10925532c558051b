// Any text as tokenizer.json: Tokenizer::from_json either throws mla::Error or gives a tokenizer
// whose encode and decode work on a few texts and return ids inside its vocabulary.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mla/error.h"
#include "mla/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const mla::Tokenizer tokenizer = mla::Tokenizer::from_json(text, "", "fuzz.json");
    for (const char* sample : {"Hello, world! 12345", " \t\n<｜User｜>x", "深度求索 😀 e\xCC\x81"}) {
      try {
        const auto ids = tokenizer.encode(sample, true);
        for (const int32_t id : ids) {
          if (id < 0 || id >= tokenizer.vocab_size()) std::abort();
        }
        (void)tokenizer.decode(ids);
      } catch (const mla::Error&) {
        // a character without a token (no unk_token) or a regex over its match limit
      }
    }
  } catch (const mla::Error&) {
  }
  return 0;
}
