// The BPE model of tokenizer.json: a vocabulary, ranked merges, and the reference's merge order
// (lowest rank first, leftmost first among equal ranks). Words seen before come from a cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mla::text {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// (left id, right id) -> (rank, merged id), open addressing.
class MergeTable {
 public:
  void reserve(size_t count);
  // Returns false when the pair was already present (its rank is replaced, as the reference's
  // map keeps the last one).
  bool insert(int32_t left, int32_t right, int32_t rank, int32_t merged);
  // rank and merged id, or rank < 0 when the pair does not merge.
  std::pair<int32_t, int32_t> find(int32_t left, int32_t right) const {
    if (slots_.empty()) return {-1, -1};
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.rank < 0) return {-1, -1};
      if (s.key == key) return {s.rank, s.merged};
    }
  }

 private:
  struct Slot {
    uint64_t key = 0;
    int32_t rank = -1;
    int32_t merged = -1;
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t key) {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 17);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

struct BpeScratch;

class Bpe {
 public:
  Vocab vocab;
  std::vector<std::string_view> id_to_token;  // into vocab's keys; "" where no token has the id
  MergeTable merges;
  std::optional<int32_t> unk_id;
  bool fuse_unk = false;
  bool ignore_merges = false;
  bool byte_level = false;     // symbols are bytes drawn in GPT-2's alphabet
  int32_t byte_ids[256] = {};  // byte_level: vocabulary id of each byte's symbol
  std::string unk_token;       // for messages

  Bpe();
  ~Bpe();
  // Appends the ids of one pre-tokenized word. Throws when a character has no symbol in the
  // vocabulary and there is no unk_token (the reference would drop it silently).
  void encode_word(std::string_view word, std::vector<int32_t>& out, BpeScratch& scratch) const;

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out, BpeScratch& scratch) const;

  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedWord = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

struct BpeScratch {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    int32_t length;  // bytes; 0 once merged into its left neighbour
  };
  struct Merge {
    int32_t rank;
    int32_t pos;
    int32_t merged;
  };
  std::vector<Symbol> symbols;
  std::vector<Merge> heap;
  std::string key;
};

}  // namespace mla::text
