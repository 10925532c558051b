// Products with few rows (decode steps): y (rows, out) = x (rows, in) * w^T, w stored (out, in)
// in float32 or bf16. Each weight is read once for all rows, so the cost is the weight bytes;
// our kernels (ops/simd/skinny_*.cc, SIMD chosen at run time) stream them at memory speed where
// oneDNN's sgemm and bf16 matmul reached a fraction of it. Threads split the outputs into
// contiguous blocks. Called by ops::linear and ops::linear_bf16 for rows <= kSkinnyMaxRows.
#pragma once

#include <cstdint>

#include "ops/simd/skinny_kernels.h"

namespace mla::ops {

using simd::kSkinnyMaxRows;

void skinny_linear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, float* y);

// x_bf16: x rounded to bf16; x_rounded: the same values as float32 (the widening kernels read
// these; only needed below AVX512_BF16, may be null there).
void skinny_linear_bf16(const uint16_t* x_bf16, const float* x_rounded, int64_t rows, int64_t in,
                        const uint16_t* w, int64_t out, float* y);

// Whether skinny_linear_bf16 needs x_rounded at the SIMD level in effect.
bool skinny_bf16_widens();

// Tests only: route skinny_linear_bf16 through the AMX kernel run on the software tile model
// (ops/simd/amx_tile_model.h), so the AMX route's packing and blocking run on CPUs without
// AMX; false goes back to the kernel choice. Not while kernels run on other threads.
void route_skinny_bf16_through_amx_model(bool on);

}  // namespace mla::ops
