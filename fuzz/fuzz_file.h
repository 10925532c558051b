// Helpers for fuzz targets whose parser reads a file: each input goes to a file in /dev/shm
// (memory, not disk) named per process.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

inline std::string fuzz_write_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = "/dev/shm/mla_fuzz_" + std::to_string(::getpid()) + "_" + name;
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size > 0) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}
