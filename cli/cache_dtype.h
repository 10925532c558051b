// --cache-dtype values shared by the commands that keep a KV cache: f32, bf16, and the
// quantized latent rows fp8 (e4m3) and int8 of mla/quantized_row.h (absorbed MLA only).
#pragma once

#include <string>

#include "mla/dtype.h"

namespace mla::cli {

// Throws "<option>: unknown value 'V' (use f32, bf16, fp8 or int8)".
DType parse_cache_dtype(const std::string& option, const std::string& value);

}  // namespace mla::cli
