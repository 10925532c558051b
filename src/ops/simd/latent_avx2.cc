// Fused latent attention, AVX2 + FMA (built with -mavx2 -mfma only; see latent_kernels.h).
// Float32 arithmetic; a bf16 cache is widened tile by tile.
#include <immintrin.h>

#include "ops/simd/latent_kernels.h"

namespace mla::ops {
namespace {

#include "ops/simd/latent_common.inc"
#include "ops/simd/vec256.inc"

}  // namespace

namespace simd {

void latent_item_avx2(const LatentItem& item) {
  latent_item_f32<V256>(item);
}

}  // namespace simd
}  // namespace mla::ops
