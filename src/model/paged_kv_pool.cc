#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "mla/error.h"
#include "mla/paged_cache.h"
#include "mla/quantized_row.h"

namespace mla {
namespace {

constexpr std::align_val_t kStorageAlign{64};

std::string seq_name(PagedKvPool::SeqId seq) {
  return "cache: unknown sequence " + std::to_string(seq);
}

}  // namespace

void PagedKvPool::AlignedDelete::operator()(std::byte* p) const {
  ::operator delete(p, kStorageAlign);
}

int64_t PagedKvPool::row_bytes_for(int64_t token_width, DType dtype, int64_t rope_width) {
  if (is_quantized_cache_dtype(dtype))
    return quantized_row_bytes(token_width - rope_width, rope_width);
  return token_width * static_cast<int64_t>(dtype_size(dtype));
}

PagedKvPool::PagedKvPool(int64_t token_width, int64_t page_size, int64_t num_pages, DType dtype,
                         int64_t rope_width)
    : token_width_(token_width),
      page_size_(page_size),
      num_pages_(num_pages),
      dtype_(dtype),
      rope_width_(rope_width) {
  if (page_size < 1 || page_size > 256) {
    throw Error("cache: page size must be between 1 and 256 tokens, got " +
                std::to_string(page_size));
  }
  if (token_width < 1 || token_width > (int64_t{1} << 24)) {
    throw Error("cache: token width must be between 1 and 2^24, got " +
                std::to_string(token_width));
  }
  if (dtype != DType::kF32 && dtype != DType::kBF16 && !is_quantized_cache_dtype(dtype)) {
    throw Error("cache: dtype must be F32, BF16, F8_E4M3 or I8, got " +
                std::string(dtype_name(dtype)));
  }
  if (rope_width != 0 &&
      (!is_quantized_cache_dtype(dtype) || rope_width < 0 || rope_width >= token_width)) {
    throw Error("cache: rope width " + std::to_string(rope_width) +
                " needs a quantized dtype (F8_E4M3, I8) and must be below the token width " +
                std::to_string(token_width));
  }
  if (num_pages < 1 || num_pages > std::numeric_limits<int32_t>::max()) {
    throw Error("cache: the pool needs between 1 and 2^31-1 pages, got " +
                std::to_string(num_pages));
  }
  row_bytes_ = row_bytes_for(token_width, dtype, rope_width);
  page_bytes_ = page_size * row_bytes_;
  if (num_pages > (int64_t{1} << 42) / page_bytes_) {
    throw Error("cache: pool of " + std::to_string(num_pages) + " pages of " +
                std::to_string(page_bytes_) + " bytes is too large");
  }
  const auto bytes = static_cast<size_t>(num_pages * page_bytes_);
  storage_.reset(static_cast<std::byte*>(::operator new(bytes, kStorageAlign)));
  std::memset(storage_.get(), 0, bytes);
  refcount_.assign(static_cast<size_t>(num_pages), 0);
  free_pages_.resize(static_cast<size_t>(num_pages));
  // Hand out low page ids first: pop_back takes the smallest.
  for (int64_t i = 0; i < num_pages; ++i)
    free_pages_[static_cast<size_t>(i)] = static_cast<int32_t>(num_pages - 1 - i);
}

int64_t PagedKvPool::pages_for_bytes(int64_t bytes, int64_t token_width, int64_t page_size,
                                     DType dtype, int64_t rope_width) {
  if (page_size < 1 || token_width < 1)
    throw Error("cache: page size and token width must be positive");
  const int64_t page_bytes = page_size * row_bytes_for(token_width, dtype, rope_width);
  if (bytes < page_bytes) {
    throw Error("cache: " + std::to_string(bytes) + " bytes hold no page of " +
                std::to_string(page_bytes) + " bytes");
  }
  return bytes / page_bytes;
}

PagedKvPool::Sequence& PagedKvPool::get(SeqId seq) {
  if (seq < 0 || seq >= static_cast<SeqId>(sequences_.size()) ||
      !sequences_[static_cast<size_t>(seq)].alive) {
    throw Error(seq_name(seq));
  }
  return sequences_[static_cast<size_t>(seq)];
}

const PagedKvPool::Sequence& PagedKvPool::get(SeqId seq) const {
  return const_cast<PagedKvPool*>(this)->get(seq);
}

PagedKvPool::SeqId PagedKvPool::add_sequence() {
  const std::lock_guard lock(*mutex_);
  return add_sequence_locked();
}

PagedKvPool::SeqId PagedKvPool::add_sequence_locked() {
  // Reuse a dead slot so ids stay dense under add/remove churn.
  for (size_t i = 0; i < sequences_.size(); ++i) {
    if (!sequences_[i].alive) {
      sequences_[i] = Sequence{};
      sequences_[i].alive = true;
      return static_cast<SeqId>(i);
    }
  }
  sequences_.push_back(Sequence{});
  sequences_.back().alive = true;
  return static_cast<SeqId>(sequences_.size() - 1);
}

void PagedKvPool::remove_sequence(SeqId seq) {
  const std::lock_guard lock(*mutex_);
  Sequence& s = get(seq);
  for (int32_t page : s.pages) release_page(page);
  s = Sequence{};
}

PagedKvPool::SeqId PagedKvPool::fork(SeqId parent) {
  const std::lock_guard lock(*mutex_);
  get(parent);  // validate before adding
  const SeqId child = add_sequence_locked();
  Sequence& p = sequences_[static_cast<size_t>(parent)];
  Sequence& c = sequences_[static_cast<size_t>(child)];
  c.pages = p.pages;
  c.table = p.table;
  c.length = p.length;
  for (int32_t page : c.pages) ++refcount_[static_cast<size_t>(page)];
  // Pages reserved but not written by the parent are not part of the fork.
  const int64_t used_pages = (c.length + page_size_ - 1) / page_size_;
  while (static_cast<int64_t>(c.pages.size()) > used_pages) {
    release_page(c.pages.back());
    c.pages.pop_back();
    c.table.pop_back();
  }
  return child;
}

bool PagedKvPool::contains(SeqId seq) const {
  const std::lock_guard lock(*mutex_);
  return seq >= 0 && seq < static_cast<SeqId>(sequences_.size()) &&
         sequences_[static_cast<size_t>(seq)].alive;
}

int64_t PagedKvPool::length(SeqId seq) const {
  const std::lock_guard lock(*mutex_);
  return get(seq).length;
}

std::vector<PagedKvPool::SeqId> PagedKvPool::sequences() const {
  const std::lock_guard lock(*mutex_);
  std::vector<SeqId> ids;
  for (size_t i = 0; i < sequences_.size(); ++i) {
    if (sequences_[i].alive) ids.push_back(static_cast<SeqId>(i));
  }
  return ids;
}

int64_t PagedKvPool::pages_needed(const Sequence& s, int64_t new_tokens) const {
  const int64_t end = s.length + new_tokens;
  int64_t needed = (end + page_size_ - 1) / page_size_ - static_cast<int64_t>(s.pages.size());
  needed = std::max<int64_t>(needed, 0);
  // Writing into a shared partly-filled last page needs a private copy first.
  if (new_tokens > 0 && s.length % page_size_ != 0) {
    const int32_t last = s.pages[static_cast<size_t>(s.length / page_size_)];
    if (refcount_[static_cast<size_t>(last)] > 1) ++needed;
  }
  return needed;
}

void PagedKvPool::reserve(std::span<const SeqId> seqs, std::span<const int64_t> new_tokens) {
  const std::lock_guard lock(*mutex_);
  if (seqs.size() != new_tokens.size())
    throw Error("cache: reserve needs one token count per sequence");
  int64_t total = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (seqs[i] == seqs[j])
        throw Error("cache: sequence " + std::to_string(seqs[i]) + " listed twice");
    }
    const Sequence& s = get(seqs[i]);
    if (new_tokens[i] < 0) throw Error("cache: cannot reserve a negative number of tokens");
    if (new_tokens[i] > (int64_t{1} << 40)) throw Error("cache: token count too large");
    total += pages_needed(s, std::max(new_tokens[i], s.reserved));
  }
  const auto available = static_cast<int64_t>(free_pages_.size());
  if (total > available) {
    throw Error("cache: out of pages: need " + std::to_string(total) + " more, " +
                std::to_string(available) + " free of " + std::to_string(num_pages_) +
                " (page size " + std::to_string(page_size_) + ")");
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    Sequence& s = sequences_[static_cast<size_t>(seqs[i])];
    const int64_t n = std::max(new_tokens[i], s.reserved);
    if (n > 0 && s.length % page_size_ != 0) {
      const size_t idx = static_cast<size_t>(s.length / page_size_);
      const int32_t last = s.pages[idx];
      if (refcount_[static_cast<size_t>(last)] > 1) {
        const int32_t copy = take_page();
        std::memcpy(page_ptr(copy), page_ptr(last), static_cast<size_t>(page_bytes_));
        release_page(last);
        s.pages[idx] = copy;
        s.table[idx] = page_ptr(copy);
      }
    }
    while (static_cast<int64_t>(s.pages.size()) * page_size_ < s.length + n) {
      const int32_t page = take_page();
      s.pages.push_back(page);
      s.table.push_back(page_ptr(page));
    }
    s.reserved = n;
  }
}

void* PagedKvPool::writable_row(SeqId seq, int64_t pos) {
  const std::lock_guard lock(*mutex_);
  Sequence& s = get(seq);
  if (pos < s.length || pos >= s.length + s.reserved) {
    throw Error("cache: position " + std::to_string(pos) + " of sequence " + std::to_string(seq) +
                " is not reserved for writing (length " + std::to_string(s.length) + ", reserved " +
                std::to_string(s.reserved) + ")");
  }
  return page_ptr(s.pages[static_cast<size_t>(pos / page_size_)]) + (pos % page_size_) * row_bytes_;
}

void PagedKvPool::encode_row(const float* values, void* row) const {
  if (is_quantized_cache_dtype(dtype_)) {
    quantize_row(values, token_width_ - rope_width_, rope_width_, dtype_, row);
  } else {
    convert_from_f32(values, static_cast<size_t>(token_width_), dtype_, row);
  }
}

void PagedKvPool::commit(SeqId seq, int64_t n) {
  const std::lock_guard lock(*mutex_);
  Sequence& s = get(seq);
  if (n < 0 || n > s.reserved) {
    throw Error("cache: cannot commit " + std::to_string(n) + " tokens to sequence " +
                std::to_string(seq) + " with " + std::to_string(s.reserved) + " reserved");
  }
  s.length += n;
  s.reserved -= n;
}

void PagedKvPool::truncate(SeqId seq, int64_t new_length) {
  const std::lock_guard lock(*mutex_);
  Sequence& s = get(seq);
  if (new_length < 0 || new_length > s.length) {
    throw Error("cache: cannot truncate sequence " + std::to_string(seq) + " of length " +
                std::to_string(s.length) + " to " + std::to_string(new_length));
  }
  s.length = new_length;
  s.reserved = 0;
  const int64_t keep = (new_length + page_size_ - 1) / page_size_;
  while (static_cast<int64_t>(s.pages.size()) > keep) {
    release_page(s.pages.back());
    s.pages.pop_back();
    s.table.pop_back();
  }
}

const void* const* PagedKvPool::page_table(SeqId seq) const {
  const std::lock_guard lock(*mutex_);
  return get(seq).table.data();
}

const void* PagedKvPool::row(SeqId seq, int64_t pos) const {
  const std::lock_guard lock(*mutex_);
  const Sequence& s = get(seq);
  if (pos < 0 || pos >= s.length + s.reserved) {
    throw Error("cache: position " + std::to_string(pos) + " is past the end of sequence " +
                std::to_string(seq) + " (length " + std::to_string(s.length) + ")");
  }
  return static_cast<const std::byte*>(s.table[static_cast<size_t>(pos / page_size_)]) +
         (pos % page_size_) * row_bytes_;
}

int64_t PagedKvPool::pages_free() const {
  const std::lock_guard lock(*mutex_);
  return static_cast<int64_t>(free_pages_.size());
}

int32_t PagedKvPool::take_page() {
  const int32_t page = free_pages_.back();
  free_pages_.pop_back();
  refcount_[static_cast<size_t>(page)] = 1;
  return page;
}

void PagedKvPool::release_page(int32_t page) {
  if (--refcount_[static_cast<size_t>(page)] == 0) free_pages_.push_back(page);
}

}  // namespace mla
