// A software model of the AMX tile instructions the skinny AMX kernel uses (LDTILECFG,
// TILELOADD, TILESTORED, TILEZERO, TDPBF16PS, TILERELEASE), written from Intel's SDM
// pseudo-code, so that the kernel (skinny_amx_common.inc), written once against a tile
// backend, runs and is tested on CPUs without AMX. The hardware raises #GP / #UD where this
// model throws mla::Error: a configuration past palette 1's limits (16 rows, 64 bytes a row),
// a tile used before configuration or outside its configured shape, mismatched TDPBF16PS shapes.
//
// TDPBF16PS per the SDM (not the Intrinsics Guide, whose summary adds both products of a pair
// to the accumulator one after the other): for each output, the even and odd products of the
// pairs are summed separately, each by a float32 FMA from zero; the two sums are added, and
// that sum is added to the accumulator. bf16 inputs are widened exactly (a bf16 is the top
// half of a float32); denormal inputs count as zero and denormal results are flushed to zero
// (DAZ = FTZ = 1), every rounding is to nearest even, MXCSR is ignored.
#pragma once

#include <cstdint>

#include "ops/simd/amx_tile_config.h"

namespace mla::ops::simd {

class AmxTileModel {
 public:
  void configure(const AmxTileConfig& config);
  void release();  // back to the unconfigured state (TILERELEASE)

  void zero(int t);
  // Row r of tile t <- colsb bytes at base + r * stride; the rest of the tile is zeroed.
  void load(int t, const void* base, int64_t stride);
  void store(int t, void* base, int64_t stride) const;
  // c += a * b with a's rows as bf16 pairs against b's columns of pairs (b: one row per pair).
  void dpbf16ps(int c, int a, int b);

  // The tile backend interface of skinny_amx_common.inc (tile numbers fixed at compile time,
  // as the hardware's immediates are).
  template <int T>
  void zero() {
    zero(T);
  }
  template <int T>
  void load(const void* base, int64_t stride) {
    load(T, base, stride);
  }
  template <int T>
  void store(void* base, int64_t stride) const {
    store(T, base, stride);
  }
  template <int C, int A, int B>
  void dpbf16ps() {
    dpbf16ps(C, A, B);
  }

 private:
  void check_tile(int t, const char* what) const;
  AmxTileConfig config_;
  bool configured_ = false;
  alignas(64) unsigned char tiles_[kAmxTiles][kAmxMaxRows][kAmxMaxColsBytes] = {};
};

// One TDPBF16PS output element as the model computes it: acc + sum over pairs p of
// a[2p] * b[2p] + a[2p+1] * b[2p+1] (a, b: bf16 bits), in the SDM's order and rounding.
float amx_dpbf16_model(float acc, const uint16_t* a, const uint16_t* b, int pairs);

}  // namespace mla::ops::simd
