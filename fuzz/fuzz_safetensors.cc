// Any bytes as a safetensors file: open() either throws mla::Error or yields tensors whose every
// byte can be read and converted without leaving the mapping.
#include <cstdint>
#include <string>

#include "fuzz_file.h"
#include "mla/error.h"
#include "mla/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz_write_file("x.safetensors", data, size);
  try {
    mla::SafetensorsFile file = mla::SafetensorsFile::open(path);
    for (const std::string& name : file.names()) {
      const mla::TensorInfo& info = file.info(name);
      if (info.numel() > (1 << 20)) continue;  // bounded work per input; bytes() still checked
      auto bytes = file.bytes(name);
      volatile unsigned char sink = 0;
      for (std::byte b : bytes) sink = sink ^ static_cast<unsigned char>(b);
      (void)file.read_f32(name);
    }
  } catch (const mla::Error&) {
  }
  return 0;
}
