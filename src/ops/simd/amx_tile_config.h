// The tile shapes an AMX kernel asks for (LDTILECFG's palette 1), shared by the hardware tiles
// (skinny_amx.cc) and their software model (amx_tile_model.h). A plain struct: the AMX-flagged
// file must not share inline code with the others (skinny_kernels.h).
#pragma once

#include <cstdint>

namespace mla::ops::simd {

inline constexpr int kAmxTiles = 8;          // tmm0..tmm7
inline constexpr int kAmxMaxRows = 16;       // palette 1: at most 16 rows a tile
inline constexpr int kAmxMaxColsBytes = 64;  // and 64 bytes a row

struct AmxTileConfig {
  uint8_t rows[kAmxTiles] = {};
  uint16_t colsb[kAmxTiles] = {};  // bytes per row; 0 rows or 0 bytes: the tile is unused
};

}  // namespace mla::ops::simd
