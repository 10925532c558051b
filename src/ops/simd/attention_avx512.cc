// ops::attention_forward's tasks, AVX-512 F/BW/VL + FMA (built with those flags only; see
// attention_kernels.h). bf16 keys and values are widened as they are loaded.
// GCC 12's AVX-512 intrinsics self-initialise their _mm512_undefined_* operands, which
// -W(maybe-)uninitialized reports at inlined calls (GCC bug 105593).
// Clang has no -Wmaybe-uninitialized (and would warn about the unknown option), so GCC only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

#include "ops/simd/attention_kernels.h"

namespace mla::ops {
namespace {

#include "ops/simd/attention_common.inc"
#include "ops/simd/vec512.inc"

}  // namespace

namespace simd {

void attention_task_avx512(const AttentionParams& p, int64_t t, int64_t g, int64_t h0, int64_t h1,
                           float* scratch) {
  attention_task_any<V512>(p, t, g, h0, h1, scratch);
}

void softmax_tile_row_avx512(float* s, int64_t visible, int64_t n, float* row_max, float* row_sum,
                             float* acc, int64_t dv) {
  softmax_tile_row<V512>(s, visible, n, row_max, row_sum, acc, dv);
}

}  // namespace simd
}  // namespace mla::ops
