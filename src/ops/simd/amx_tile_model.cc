#include "ops/simd/amx_tile_model.h"

#include <cmath>
#include <cstring>
#include <string>

#include "mla/error.h"

namespace mla::ops::simd {
namespace {

float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t float_to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// DAZ on inputs and FTZ on results: a denormal becomes a zero of the same sign.
float flush_denormal(float f) {
  const uint32_t bits = float_to_bits(f);
  if ((bits & 0x7f800000u) == 0 && (bits & 0x007fffffu) != 0)
    return bits_to_float(bits & 0x80000000u);
  return f;
}

// make_fp32: the bf16 bits as the top half of a float32 (exact), then DAZ.
float widen(uint16_t bf16) {
  return flush_denormal(bits_to_float(static_cast<uint32_t>(bf16) << 16));
}

[[noreturn]] void fault(const std::string& what) {
  throw Error("AMX tile model: " + what);
}

}  // namespace

float amx_dpbf16_model(float acc, const uint16_t* a, const uint16_t* b, int pairs) {
  float even = 0.0f, odd = 0.0f;  // the SDM's temp1.fp32[2n] and temp1.fp32[2n+1]
  for (int p = 0; p < pairs; ++p) {
    even = flush_denormal(std::fma(widen(a[2 * p]), widen(b[2 * p]), even));
    odd = flush_denormal(std::fma(widen(a[2 * p + 1]), widen(b[2 * p + 1]), odd));
  }
  const float sum = flush_denormal(even + odd);
  return flush_denormal(flush_denormal(acc) + sum);
}

void AmxTileModel::configure(const AmxTileConfig& config) {
  for (int t = 0; t < kAmxTiles; ++t) {
    const std::string tile = "tmm" + std::to_string(t);
    if (config.rows[t] > kAmxMaxRows)
      fault(tile + " has " + std::to_string(config.rows[t]) + " rows (at most 16)");
    if (config.colsb[t] > kAmxMaxColsBytes)
      fault(tile + " has " + std::to_string(config.colsb[t]) + " bytes a row (at most 64)");
    if ((config.rows[t] == 0) != (config.colsb[t] == 0))
      fault(tile + " has rows or bytes a row but not both");
  }
  config_ = config;
  configured_ = true;
  std::memset(tiles_, 0, sizeof tiles_);  // LDTILECFG zeroes every tile
}

void AmxTileModel::release() {
  config_ = AmxTileConfig{};
  configured_ = false;
  std::memset(tiles_, 0, sizeof tiles_);
}

void AmxTileModel::check_tile(int t, const char* what) const {
  if (!configured_) fault(std::string(what) + " before the tiles were configured");
  if (t < 0 || t >= kAmxTiles) fault(std::string(what) + " of tile " + std::to_string(t));
  if (config_.rows[t] == 0) fault(std::string(what) + " of unconfigured tmm" + std::to_string(t));
}

void AmxTileModel::zero(int t) {
  check_tile(t, "TILEZERO");
  std::memset(tiles_[t], 0, sizeof tiles_[t]);
}

void AmxTileModel::load(int t, const void* base, int64_t stride) {
  check_tile(t, "TILELOADD");
  std::memset(tiles_[t], 0, sizeof tiles_[t]);
  const auto* src = static_cast<const unsigned char*>(base);
  for (int r = 0; r < config_.rows[t]; ++r)
    std::memcpy(tiles_[t][r], src + r * stride, config_.colsb[t]);
}

void AmxTileModel::store(int t, void* base, int64_t stride) const {
  check_tile(t, "TILESTORED");
  auto* dst = static_cast<unsigned char*>(base);
  for (int r = 0; r < config_.rows[t]; ++r)
    std::memcpy(dst + r * stride, tiles_[t][r], config_.colsb[t]);
}

void AmxTileModel::dpbf16ps(int c, int a, int b) {
  check_tile(c, "TDPBF16PS");
  check_tile(a, "TDPBF16PS");
  check_tile(b, "TDPBF16PS");
  if (c == a || c == b || a == b) fault("TDPBF16PS with a tile used twice");
  const int m_rows = config_.rows[c], c_bytes = config_.colsb[c], a_bytes = config_.colsb[a];
  if (c_bytes % 4 != 0 || a_bytes % 4 != 0 || config_.colsb[b] % 4 != 0)
    fault("TDPBF16PS on rows that are not whole dwords");
  if (config_.rows[a] != m_rows || a_bytes / 4 != config_.rows[b] || config_.colsb[b] != c_bytes)
    fault("TDPBF16PS shapes do not match: C " + std::to_string(m_rows) + "x" +
          std::to_string(c_bytes) + ", A " + std::to_string(config_.rows[a]) + "x" +
          std::to_string(a_bytes) + ", B " + std::to_string(config_.rows[b]) + "x" +
          std::to_string(config_.colsb[b]) + " (rows x bytes)");
  const int pairs = a_bytes / 4, columns = c_bytes / 4;
  for (int m = 0; m < m_rows; ++m) {
    uint16_t a_row[kAmxMaxColsBytes / 2];
    std::memcpy(a_row, tiles_[a][m], sizeof a_row);
    for (int n = 0; n < columns; ++n) {
      uint16_t b_col[kAmxMaxColsBytes / 2];  // column n of B: pair p is B's row p, dword n
      for (int p = 0; p < pairs; ++p) std::memcpy(b_col + 2 * p, tiles_[b][p] + 4 * n, 4);
      float acc;
      std::memcpy(&acc, tiles_[c][m] + 4 * n, 4);
      acc = amx_dpbf16_model(acc, a_row, b_col, pairs);
      std::memcpy(tiles_[c][m] + 4 * n, &acc, 4);
    }
  }
}

}  // namespace mla::ops::simd
