#include "cache_dtype.h"

#include "mla/error.h"

namespace mla::cli {

DType parse_cache_dtype(const std::string& option, const std::string& value) {
  if (value == "f32") return DType::kF32;
  if (value == "bf16") return DType::kBF16;
  if (value == "fp8") return DType::kF8E4M3;
  if (value == "int8") return DType::kI8;
  throw Error(option + ": unknown value '" + value + "' (use f32, bf16, fp8 or int8)");
}

}  // namespace mla::cli
