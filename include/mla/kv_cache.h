// Per-sequence caches for one layer. Legend: B = batch, C = capacity (tokens), R = kv_lora_rank,
// Dr/Dn/Dv = rope/nope/value head widths, H = heads.
//
// LatentCache serves the absorbed path: one row of R + Dr numbers per token, shared by all heads
// (c_kv then k_pe, as FlashMLA's 576-wide rows). NaiveKvCache serves the naive path: per-head
// keys (Dn + Dr) and values (Dv). Every sequence of a batch holds the same number of tokens;
// token i sits at rotary position start_position() + i.
#pragma once

#include <cstdint>
#include <vector>

#include "mla/config.h"

namespace mla {

class LatentCache {
 public:
  // Throws mla::Error on batch < 1, capacity < 1, or start_position < 0.
  LatentCache(const MlaConfig& config, int64_t batch, int64_t capacity, int64_t start_position = 0);

  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }
  int64_t start_position() const { return start_position_; }
  int64_t row_width() const { return row_width_; }  // R + Dr
  int64_t kv_lora_rank() const { return kv_lora_rank_; }
  int64_t bytes() const { return static_cast<int64_t>(data_.size() * sizeof(float)); }
  int64_t bytes_per_token() const { return row_width_ * static_cast<int64_t>(sizeof(float)); }

  // (C, R + Dr) rows of sequence b.
  float* rows(int64_t b) { return data_.data() + b * capacity_ * row_width_; }
  const float* rows(int64_t b) const { return data_.data() + b * capacity_ * row_width_; }

  // Throws "cache: appending N tokens to L cached would exceed capacity C" before any write.
  void check_room(int64_t new_tokens) const;
  void commit(int64_t new_tokens);  // after the rows were written
  void clear() { length_ = 0; }

 private:
  int64_t batch_, capacity_, start_position_, row_width_, kv_lora_rank_;
  int64_t length_ = 0;
  std::vector<float> data_;  // (B, C, R + Dr)
};

class NaiveKvCache {
 public:
  NaiveKvCache(const MlaConfig& config, int64_t batch, int64_t capacity,
               int64_t start_position = 0);

  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }
  int64_t start_position() const { return start_position_; }
  int64_t key_width() const { return key_width_; }      // H * (Dn + Dr)
  int64_t value_width() const { return value_width_; }  // H * Dv
  int64_t bytes() const {
    return static_cast<int64_t>((keys_.size() + values_.size()) * sizeof(float));
  }
  int64_t bytes_per_token() const {
    return (key_width_ + value_width_) * static_cast<int64_t>(sizeof(float));
  }

  float* keys(int64_t b) { return keys_.data() + b * capacity_ * key_width_; }  // (C, H, Dn+Dr)
  float* values(int64_t b) { return values_.data() + b * capacity_ * value_width_; }  // (C, H, Dv)

  void check_room(int64_t new_tokens) const;
  void commit(int64_t new_tokens);
  void clear() { length_ = 0; }

 private:
  int64_t batch_, capacity_, start_position_, key_width_, value_width_;
  int64_t length_ = 0;
  std::vector<float> keys_;
  std::vector<float> values_;
};

}  // namespace mla
