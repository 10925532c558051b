// The software model of the AMX tile instructions (ops/simd/amx_tile_model.h) that the AMX
// skinny kernel is tested on where no CPU has AMX: TDPBF16PS in the SDM's order and rounding,
// bit for bit on hand-computed cases, DAZ / FTZ, loads that zero what they do not fill, and the
// faults (LDTILECFG's palette-1 limits, mismatched shapes, tiles used unconfigured) as errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "mla/error.h"
#include "ops/simd/amx_tile_model.h"

namespace mla {
namespace {

using ops::simd::AmxTileConfig;
using ops::simd::AmxTileModel;

constexpr uint16_t kOne = 0x3f80;        // 1.0
constexpr uint16_t kTwoTo24 = 0x4b80;    // 2^24
constexpr uint16_t kHalf = 0x3f00;       // 0.5
constexpr uint16_t kMinNormal = 0x0080;  // 2^-126
constexpr uint16_t kDenormal = 0x0001;   // 2^-133, a bf16 denormal
constexpr uint16_t kTwoTo127 = 0x7f00;   // 2^127

float bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// acc = 1, pairs (2^24, 1) . (1, 1) and (1, 1) . (1, 1). The SDM sums even and odd products
// apart: even = 2^24 + 1 -> 2^24 (a tie, to even), odd = 2, their sum 2^24 + 2, plus the
// accumulator 2^24 + 3 -> 2^24 + 4 (a tie, to even). Adding the four products to the
// accumulator one after the other (the Intrinsics Guide's summary) would give 2^24.
TEST(AmxTileModel, Tdpbf16psFollowsTheSdmOrderBitForBit) {
  const uint16_t a[4] = {kTwoTo24, kOne, kOne, kOne};
  const uint16_t b[4] = {kOne, kOne, kOne, kOne};
  EXPECT_EQ(ops::simd::amx_dpbf16_model(1.0f, a, b, 2), 16777220.0f);
  EXPECT_EQ(ops::simd::amx_dpbf16_model(0.0f, a, b, 2), 16777218.0f);
}

TEST(AmxTileModel, DenormalInputsCountAsZeroAndDenormalResultsAreFlushed) {
  const uint16_t denormal[2] = {kDenormal, 0}, huge[2] = {kTwoTo127, 0};
  EXPECT_EQ(ops::simd::amx_dpbf16_model(0.25f, denormal, huge, 1), 0.25f);  // not 0.25 + 2^-6
  const uint16_t tiny[2] = {kMinNormal, 0}, half[2] = {kHalf, 0};
  const float flushed = ops::simd::amx_dpbf16_model(0.0f, tiny, half, 1);  // 2^-127: denormal
  EXPECT_EQ(flushed, 0.0f);
  const float denormal_acc = bits(0x00000010u);  // the accumulator too is read as zero
  const uint16_t zeros[2] = {0, 0};
  EXPECT_EQ(ops::simd::amx_dpbf16_model(denormal_acc, tiny, zeros, 1), 0.0f);
}

// One 2 x 2 product through the tiles: C (2 x 2 float32) += A (2 rows of 2 pairs) * B (2 pair
// rows x 2 columns), loaded with strides wider than the rows, stored back.
TEST(AmxTileModel, TilesMultiplyLoadAndStoreAsConfigured) {
  AmxTileConfig config;
  config.rows[0] = 2;  // C
  config.colsb[0] = 8;
  config.rows[1] = 2;  // A: 2 pairs a row
  config.colsb[1] = 8;
  config.rows[2] = 2;  // B: one row a pair
  config.colsb[2] = 8;
  AmxTileModel tiles;
  tiles.configure(config);
  // A = [[1, 2, 3, 4], [0.5, 1, 1, 1]] (bf16), B's column n holds pairs (b[0][2n], b[0][2n+1]),
  // (b[1][2n], b[1][2n+1]).
  const uint16_t a[2][6] = {{0x3f80, 0x4000, 0x4040, 0x4080, 0xffff, 0xffff},
                            {0x3f00, 0x3f80, 0x3f80, 0x3f80, 0xffff, 0xffff}};
  const uint16_t b[2][4] = {{0x3f80, 0x3f80, 0x4000, 0x0000}, {0x3f80, 0x0000, 0x0000, 0x3f80}};
  const float c_in[2][2] = {{10.0f, 20.0f}, {30.0f, 40.0f}};
  tiles.load(1, a, sizeof a[0]);  // stride 12 bytes: the 0xffff tails are not read
  tiles.load(2, b, sizeof b[0]);
  tiles.load(0, c_in, sizeof c_in[0]);
  tiles.dpbf16ps(0, 1, 2);
  float c[2][3] = {{-1, -1, -1}, {-1, -1, -1}};
  tiles.store(0, c, sizeof c[0]);
  // c[m][n] += sum_p a[m][2p] b[p][2n] + a[m][2p+1] b[p][2n+1]
  EXPECT_EQ(c[0][0], 10.0f + (1 * 1 + 2 * 1) + (3 * 1 + 4 * 0));
  EXPECT_EQ(c[0][1], 20.0f + (1 * 2 + 2 * 0) + (3 * 0 + 4 * 1));
  EXPECT_EQ(c[1][0], 30.0f + (0.5f * 1 + 1 * 1) + (1 * 1 + 1 * 0));
  EXPECT_EQ(c[1][1], 40.0f + (0.5f * 2 + 1 * 0) + (1 * 0 + 1 * 1));
  EXPECT_EQ(c[0][2], -1.0f);  // past the tile's 8 bytes: untouched
  tiles.zero(0);
  tiles.store(0, c, sizeof c[0]);
  EXPECT_EQ(c[1][1], 0.0f);
}

std::string fault_of(AmxTileModel& tiles, const AmxTileConfig& config) {
  try {
    tiles.configure(config);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(AmxTileModel, FaultsWhereTheHardwareWould) {
  AmxTileModel tiles;
  AmxTileConfig config;
  config.rows[3] = 17;
  config.colsb[3] = 64;
  EXPECT_EQ(fault_of(tiles, config), "AMX tile model: tmm3 has 17 rows (at most 16)");
  config.rows[3] = 16;
  config.colsb[3] = 65;
  EXPECT_EQ(fault_of(tiles, config), "AMX tile model: tmm3 has 65 bytes a row (at most 64)");
  config.colsb[3] = 0;
  EXPECT_EQ(fault_of(tiles, config), "AMX tile model: tmm3 has rows or bytes a row but not both");

  const float buffer[16 * 16] = {};
  EXPECT_THROW(tiles.load(0, buffer, 64), Error);  // nothing configured (all three failed)
  config = AmxTileConfig{};
  config.rows[0] = config.rows[1] = config.rows[2] = 16;
  config.colsb[0] = 16;  // C: 4 columns
  config.colsb[1] = 64;  // A: 16 pairs
  config.colsb[2] = 8;   // B: 2 columns, not C's 4
  tiles.configure(config);
  EXPECT_THROW(tiles.load(5, buffer, 64), Error);  // tmm5 is not configured
  try {
    tiles.dpbf16ps(0, 1, 2);
    ADD_FAILURE() << "mismatched shapes accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "AMX tile model: TDPBF16PS shapes do not match: C 16x16, A 16x64, B 16x8 (rows x "
              "bytes)");
  }
  EXPECT_THROW(tiles.dpbf16ps(0, 1, 1), Error);  // a tile twice
  tiles.release();
  EXPECT_THROW(tiles.zero(0), Error);
}

}  // namespace
}  // namespace mla
