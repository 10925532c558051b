// ops::attention_forward's tasks, AVX2 + FMA (built with -mavx2 -mfma only; see
// attention_kernels.h). bf16 keys and values are widened as they are loaded.
#include <immintrin.h>

#include "ops/simd/attention_kernels.h"

namespace mla::ops {
namespace {

#include "ops/simd/attention_common.inc"
#include "ops/simd/vec256.inc"

}  // namespace

namespace simd {

void attention_task_avx2(const AttentionParams& p, int64_t t, int64_t g, int64_t h0, int64_t h1,
                         float* scratch) {
  attention_task_any<V256>(p, t, g, h0, h1, scratch);
}

void softmax_tile_row_avx2(float* s, int64_t visible, int64_t n, float* row_max, float* row_sum,
                           float* acc, int64_t dv) {
  softmax_tile_row<V256>(s, visible, n, row_max, row_sum, acc, dv);
}

}  // namespace simd
}  // namespace mla::ops
