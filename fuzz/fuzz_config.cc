// Any text as config.json: parse_config_json either throws mla::Error or returns a config that
// validates and round-trips through JSON.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mla/config.h"
#include "mla/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const mla::MlaConfig config = mla::parse_config_json(text, "fuzz.json");
    config.validate();
    const mla::MlaConfig back = mla::parse_config_json(mla::config_to_json(config), "roundtrip");
    if (mla::config_to_json(back) != mla::config_to_json(config)) std::abort();
    (void)config.softmax_scale();
  } catch (const mla::Error&) {
  }
  return 0;
}
