// Any text as model.safetensors.index.json beside one valid shard: CheckpointDir::open either
// throws mla::Error or maps every listed tensor to a shard that holds it.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_file.h"
#include "mla/error.h"
#include "mla/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = "/dev/shm/mla_fuzz_index_" + std::to_string(::getpid());
    ::mkdir(d.c_str(), 0700);
    // One shard with two tiny tensors, written by hand (8-byte length, JSON, data).
    const std::string header =
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]}})";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    bytes += header + std::string(10, '\x3f');
    if (FILE* f = std::fopen((d + "/model-00001.safetensors").c_str(), "wb")) {
      std::fwrite(bytes.data(), 1, bytes.size(), f);
      std::fclose(f);
    }
    return d;
  }();
  if (FILE* f = std::fopen((dir + "/model.safetensors.index.json").c_str(), "wb")) {
    if (size > 0) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    mla::CheckpointDir ckpt = mla::CheckpointDir::open(dir);
    for (const std::string& name : ckpt.names()) {
      if (!ckpt.file_for(name).contains(name)) std::abort();
      (void)ckpt.file_for(name).read_f32(name);
    }
  } catch (const mla::Error&) {
  }
  return 0;
}
