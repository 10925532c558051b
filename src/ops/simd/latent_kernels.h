// The per-instruction-set half of the fused latent attention (ops/latent_attention.h): one work
// item = a block of query rows (tokens x heads of one sequence) over a range of keys. The driver
// (latent_attention.cc) splits work, threads it and merges split contexts; the files here do the
// arithmetic, each compiled with its own -m flags and called only when the CPU has them.
//
// Everything in this header is plain data and declarations. An ISA file must not instantiate
// or odr-use any inline function or template shared with other files (std:: containers and
// algorithms included): the linker keeps one copy of such a function, possibly the one built
// with AVX-512, and a CPU without it would then fault in unrelated code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mla/dtype.h"
#include "ops/kv_view.h"

namespace mla::ops::simd {

// Keys per tile: the scores of a tile are (kLatentTile, rows) floats.
inline constexpr int64_t kLatentTile = 96;
// Keys per tile of the VDPBF16PS kernel. Its P V takes half the cycles per key of an FMA, so
// reloading and storing the accumulators (rows x rank floats, from L2) once per tile weighs twice
// as much there; 192 keys halve that (the tile's blocks still fit a 1 MiB L2 at 128 rows).
inline constexpr int64_t kLatentTileBf16 = 192;
// The scratch blocks that depend on the tile are sized for the larger one.
inline constexpr int64_t kLatentTileMax =
    kLatentTileBf16 > kLatentTile ? kLatentTileBf16 : kLatentTile;
// Row counts are padded to this (a multiple of every vector width), as are all scratch blocks.
inline constexpr int64_t kLatentPad = 16;

struct LatentItem {
  // Query rows: row i is token t0 + i / nh, head h0 + i % nh (nh = h1 - h0); its query is the
  // absorbed q~ then q_pe, `width` floats at q + t * q_token_stride + h * q_head_stride.
  const float* q = nullptr;
  int64_t q_token_stride = 0, q_head_stride = 0;
  int64_t t0 = 0, t1 = 0, h0 = 0, h1 = 0;
  int64_t width = 0;  // R + Dr
  int64_t rank = 0;   // R: the value is the first R entries of a key row
  float scale = 1.0f;
  int64_t context_before = 0;  // query t sees keys 0 .. context_before + t
  KvView kv;                   // latent rows (F32, BF16, F8_E4M3 or I8) between keys k0, k1
  int64_t k0 = 0, k1 = 0;

  // Results. With `out` set the normalised output is written there (out rows as q rows, `rank`
  // floats each). Otherwise the unnormalised accumulators go to acc (rows, acc_stride) and the
  // running max (log2 domain) and sum to row_max, row_sum, for the driver's log-sum-exp merge.
  float* out = nullptr;
  int64_t out_token_stride = 0, out_head_stride = 0;
  float* acc = nullptr;
  int64_t acc_stride = 0;
  float* row_max = nullptr;
  float* row_sum = nullptr;

  float* scratch = nullptr;  // 64-byte aligned, latent_scratch_floats(rows, width, rank) floats
};

// Offsets (in floats, each a multiple of kLatentPad) of the kernel's scratch blocks; `tile` is
// kLatentTileMax.
struct LatentScratch {
  int64_t rows_pad, width_pad, rank_pad;
  size_t qt;            // packed, scaled queries: (width_pad, rows_pad) f32 or bf16 pairs
  size_t scores;        // (tile, rows_pad) scores, then probabilities
  size_t probs_bf16;    // (tile / 2, rows_pad, 2) bf16 probabilities
  size_t keys;          // (kLatentTile, width_pad) keys widened to f32 when not used in place;
                        // for VDPBF16PS (kLatentTileBf16, width_pad) bf16 keys, then rows_pad f32
  size_t values_bf16;   // (tile / 2, rank_pad, 2) bf16 values, pairs of keys interleaved
  size_t acc;           // (rows_pad, rank_pad) accumulators when the item writes `out`
  size_t quant_scales;  // (tile, groups) group scales of a quantized tile (groups =
                        // ceil(rank / 128)), for the VDPBF16PS kernel
  size_t group_probs;   // (groups, tile / 2, rows_pad, 2) bf16 probabilities x scale
  size_t stats;         // 5 x rows_pad: max, sum, correction, last visible key, and the
                        // tile's score max (the VDPBF16PS kernel finds it while scoring)
  size_t pointers;      // a tile's row pointers (2 floats each)
  size_t total;
};
LatentScratch latent_scratch(int64_t rows, int64_t width, int64_t rank);

// One per instruction set. scalar: plain C++ (any x86-64); avx2: AVX2+FMA; avx512: F/BW/VL with
// a bf16 cache widened to f32; avx512bf16: bf16 caches, and fp8 / int8 caches decoded to bf16
// per tile, through VDPBF16PS (f32 caches as avx512). Quantized caches are widened to f32 by
// the others.
void latent_item_scalar(const LatentItem& item);
void latent_item_avx2(const LatentItem& item);
void latent_item_avx512(const LatentItem& item);
void latent_item_avx512bf16(const LatentItem& item);

}  // namespace mla::ops::simd
