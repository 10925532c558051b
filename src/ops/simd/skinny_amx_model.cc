// The AMX skinny kernel (skinny_amx_common.inc) on the software tile model (amx_tile_model.h):
// the same code as skinny_amx.cc's but for the tile instructions, so tests check its blocking,
// staging and edges on any CPU. Far slower than any SIMD kernel; never dispatched by itself.
#include "ops/simd/amx_tile_model.h"
#include "ops/simd/skinny_kernels.h"

namespace mla::ops::simd {
namespace {

#include "ops/simd/skinny_amx_common.inc"

}  // namespace

void skinny_bf16_amx_model(const uint16_t* x_pairs, int64_t rows, int64_t in, const uint16_t* w,
                           int64_t o0, int64_t o1, float* y, int64_t out) {
  AmxTileModel tiles;
  AmxSkinny<AmxTileModel> kernel{tiles, x_pairs, rows, in, w, y, out, {}, {}};
  kernel.run(o0, o1);
}

}  // namespace mla::ops::simd
