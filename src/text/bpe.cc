#include "text/bpe.h"

#include <algorithm>
#include <cstdio>

#include "mla/error.h"
#include "text/utf8.h"

namespace mla::text {

void MergeTable::reserve(size_t count) {
  size_t size = 16;
  while (size < 2 * count + 16) size *= 2;
  slots_.assign(size, Slot{});
  mask_ = size - 1;
  count_ = 0;
}

bool MergeTable::insert(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  if (2 * (count_ + 1) > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    reserve(std::max<size_t>(count_ + 1, old.size()));
    for (const Slot& s : old) {
      if (s.rank >= 0)
        insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.rank,
               s.merged);
    }
  }
  const uint64_t key = pack(left, right);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.rank < 0) {
      s = {key, rank, merged};
      ++count_;
      return true;
    }
    if (s.key == key) {
      s.rank = rank;
      s.merged = merged;
      return false;
    }
  }
}

Bpe::Bpe() = default;
Bpe::~Bpe() = default;

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out, BpeScratch& scratch) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= kMaxCachedWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out, scratch);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_.emplace(std::string(word),
                   std::vector<int32_t>(out.begin() + static_cast<ptrdiff_t>(first), out.end()));
  }
}

void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out, BpeScratch& s) const {
  auto& symbols = s.symbols;
  symbols.clear();
  if (byte_level) {
    if (ignore_merges) {
      s.key.clear();
      for (const char ch : word) s.key += byte_alphabet().to_utf8[static_cast<unsigned char>(ch)];
      const auto it = vocab.find(std::string_view(s.key));
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    for (const char ch : word) {
      const int32_t n = static_cast<int32_t>(symbols.size());
      symbols.push_back({byte_ids[static_cast<unsigned char>(ch)], n - 1, n + 1, 1});
    }
  } else {
    if (ignore_merges) {
      const auto it = vocab.find(word);
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    size_t i = 0;
    while (i < word.size()) {
      const size_t length = utf8_length(static_cast<unsigned char>(word[i]));
      const auto it = vocab.find(word.substr(i, length));
      int32_t id;
      if (it != vocab.end()) {
        id = it->second;
      } else if (unk_id) {
        id = *unk_id;
        if (fuse_unk && !symbols.empty() && symbols.back().id == *unk_id) {
          symbols.back().length += static_cast<int32_t>(length);
          i += length;
          continue;
        }
      } else {
        size_t at = i;
        const uint32_t cp = next_code_point(word, at);
        char hex[16];
        std::snprintf(hex, sizeof hex, "U+%04X", cp);
        throw Error(std::string("tokenizer: character ") + hex +
                    " has no token in the vocabulary and model.unk_token is null");
      }
      const int32_t n = static_cast<int32_t>(symbols.size());
      symbols.push_back({id, n - 1, n + 1, static_cast<int32_t>(length)});
      i += length;
    }
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // The reference's queue: lowest rank first, then lowest position.
  auto& heap = s.heap;
  heap.clear();
  const auto later = [](const BpeScratch::Merge& a, const BpeScratch::Merge& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    const auto [rank, merged] = merges.find(symbols[i].id, symbols[i + 1].id);
    if (rank >= 0) heap.push_back({rank, static_cast<int32_t>(i), merged});
  }
  std::make_heap(heap.begin(), heap.end(), later);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const BpeScratch::Merge top = heap.back();
    heap.pop_back();
    BpeScratch::Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.length == 0 || left.next < 0) continue;
    const size_t right_pos = static_cast<size_t>(left.next);
    const BpeScratch::Symbol right = symbols[right_pos];
    // A stale entry: one side has merged with something else since it was queued.
    const auto [rank_now, merged_now] = merges.find(left.id, right.id);
    if (rank_now < 0 || merged_now != top.merged) continue;
    left.id = top.merged;
    left.length += right.length;
    left.next = right.next;
    symbols[right_pos].length = 0;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) {
      const auto [rank, merged] = merges.find(symbols[static_cast<size_t>(left.prev)].id, left.id);
      if (rank >= 0) {
        heap.push_back({rank, left.prev, merged});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
    if (left.next >= 0) {
      const auto [rank, merged] = merges.find(left.id, symbols[static_cast<size_t>(left.next)].id);
      if (rank >= 0) {
        heap.push_back({rank, top.pos, merged});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
  }
  for (const BpeScratch::Symbol& sym : symbols) {
    if (sym.length != 0) out.push_back(sym.id);
  }
}

}  // namespace mla::text
