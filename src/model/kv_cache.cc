#include "mla/kv_cache.h"

#include <string>

#include "mla/error.h"

namespace mla {
namespace {

void check_cache_args(int64_t batch, int64_t capacity, int64_t start_position) {
  if (batch < 1) throw Error("cache: batch must be at least 1, got " + std::to_string(batch));
  if (capacity < 1)
    throw Error("cache: capacity must be at least 1, got " + std::to_string(capacity));
  if (start_position < 0) {
    throw Error("cache: start position must not be negative, got " +
                std::to_string(start_position));
  }
}

void check_append(int64_t length, int64_t capacity, int64_t new_tokens) {
  if (new_tokens < 0) throw Error("cache: cannot append a negative number of tokens");
  if (new_tokens > capacity - length) {
    throw Error("cache: appending " + std::to_string(new_tokens) + " tokens to " +
                std::to_string(length) + " cached would exceed capacity " +
                std::to_string(capacity));
  }
}

// Allocation size with an overflow check: capacity comes from users.
size_t checked_numbers(int64_t batch, int64_t capacity, int64_t width) {
  constexpr int64_t kMax = int64_t{1} << 40;  // 4 TiB of floats: far beyond any machine
  if (capacity > kMax / batch || batch * capacity > kMax / width) {
    throw Error("cache: batch x capacity x width is too large (" + std::to_string(batch) + " x " +
                std::to_string(capacity) + " x " + std::to_string(width) + ")");
  }
  return static_cast<size_t>(batch * capacity * width);
}

}  // namespace

LatentCache::LatentCache(const MlaConfig& config, int64_t batch, int64_t capacity,
                         int64_t start_position)
    : batch_(batch),
      capacity_(capacity),
      start_position_(start_position),
      row_width_(config.latent_dim()),
      kv_lora_rank_(config.kv_lora_rank) {
  check_cache_args(batch, capacity, start_position);
  data_.assign(checked_numbers(batch, capacity, row_width_), 0.0f);
}

void LatentCache::check_room(int64_t new_tokens) const {
  check_append(length_, capacity_, new_tokens);
}

void LatentCache::commit(int64_t new_tokens) {
  check_room(new_tokens);
  length_ += new_tokens;
}

NaiveKvCache::NaiveKvCache(const MlaConfig& config, int64_t batch, int64_t capacity,
                           int64_t start_position)
    : batch_(batch),
      capacity_(capacity),
      start_position_(start_position),
      key_width_(config.num_heads * config.qk_head_dim()),
      value_width_(config.num_heads * config.v_head_dim) {
  check_cache_args(batch, capacity, start_position);
  keys_.assign(checked_numbers(batch, capacity, key_width_), 0.0f);
  values_.assign(checked_numbers(batch, capacity, value_width_), 0.0f);
}

void NaiveKvCache::check_room(int64_t new_tokens) const {
  check_append(length_, capacity_, new_tokens);
}

void NaiveKvCache::commit(int64_t new_tokens) {
  check_room(new_tokens);
  length_ += new_tokens;
}

}  // namespace mla
