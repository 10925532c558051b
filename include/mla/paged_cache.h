// PagedKvPool: a fixed pool of pages, each holding `page_size` token rows of `token_width`
// numbers, shared by many sequences through per-sequence page tables (vLLM/FlashMLA style).
//
// The same pool serves every cache layout: MLA's latent rows (R + Dr), the naive path's per-head
// K and V, and the MHA/GQA/MQA baselines (2 G Dh). Sequences are added, removed and forked; a
// fork shares its parent's pages and copies a page only when it must write into a shared one
// (copy on write). Every operation that can fail checks first and changes nothing when it throws.
//
// Thread safety: every member function locks the pool, so several threads may decode different
// sequences against one pool at once (each with its own layer, whose workspace is not shared).
// Kernels read pages through page_table() without the lock; that is safe because a page is
// written only by the sequence that owns it privately (copy on write makes it private first)
// and storage never moves. Two threads must not step the same sequence, nor fork a sequence
// another thread is stepping. Moving a pool is not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "mla/dtype.h"

namespace mla {

class PagedKvPool {
 public:
  using SeqId = int64_t;

  // Throws on page_size outside [1, 256], token_width < 1, num_pages < 1, or an unsupported
  // dtype (F32, BF16, or the quantized latent rows F8_E4M3 / I8 of mla/quantized_row.h, whose
  // last `rope_width` numbers are kept in bf16: rope_width in [0, token_width) then).
  PagedKvPool(int64_t token_width, int64_t page_size, int64_t num_pages, DType dtype = DType::kF32,
              int64_t rope_width = 0);
  // The number of pages that fit in `bytes` (throws if not even one does).
  static int64_t pages_for_bytes(int64_t bytes, int64_t token_width, int64_t page_size, DType dtype,
                                 int64_t rope_width = 0);
  // Bytes of one token row in `dtype` (quantized: mla/quantized_row.h's layout).
  static int64_t row_bytes_for(int64_t token_width, DType dtype, int64_t rope_width);

  SeqId add_sequence();
  // Throws "cache: unknown sequence N".
  void remove_sequence(SeqId seq);
  SeqId fork(SeqId parent);  // shares the parent's tokens; copy on write
  bool contains(SeqId seq) const;
  int64_t length(SeqId seq) const;
  std::vector<SeqId> sequences() const;

  // Makes room for new_tokens[i] more tokens in seqs[i], all or nothing: throws
  // "cache: out of pages: ..." without changing anything if the pool is too small.
  void reserve(std::span<const SeqId> seqs, std::span<const int64_t> new_tokens);
  // Row of token `pos` (< length + reserved) for writing; the page is private to `seq`.
  void* writable_row(SeqId seq, int64_t pos);
  // Stores token_width float32 numbers at a row from writable_row() in the pool's dtype
  // (rounded to bf16, or quantized with their scales).
  void encode_row(const float* values, void* row) const;
  // Marks n reserved tokens as written.
  void commit(SeqId seq, int64_t n);
  // Drops tokens past `new_length` (speculative decoding rejects), freeing whole pages.
  void truncate(SeqId seq, int64_t new_length);

  // Page table of a sequence, valid until the next reserve/remove/fork/truncate.
  const void* const* page_table(SeqId seq) const;
  const void* row(SeqId seq, int64_t pos) const;

  int64_t token_width() const { return token_width_; }
  int64_t page_size() const { return page_size_; }
  DType dtype() const { return dtype_; }
  int64_t page_bytes() const { return page_bytes_; }
  int64_t row_bytes() const { return row_bytes_; }
  int64_t rope_width() const { return rope_width_; }  // quantized dtypes: the bf16 tail
  int64_t pages_total() const { return num_pages_; }
  int64_t pages_free() const;
  int64_t pages_used() const { return num_pages_ - pages_free(); }
  int64_t bytes_total() const { return num_pages_ * page_bytes_; }
  int64_t bytes_used() const { return pages_used() * page_bytes_; }

 private:
  struct Sequence {
    std::vector<int32_t> pages;      // page ids in token order
    std::vector<const void*> table;  // their addresses, handed to kernels
    int64_t length = 0;              // tokens written
    int64_t reserved = 0;            // tokens reserved beyond length
    bool alive = false;
  };
  // Everything below runs with mutex_ held by the public member that called it.
  Sequence& get(SeqId seq);
  const Sequence& get(SeqId seq) const;
  std::byte* page_ptr(int32_t page) {
    return storage_.get() + static_cast<size_t>(page) * page_bytes_;
  }
  SeqId add_sequence_locked();
  int64_t pages_needed(const Sequence& s, int64_t new_tokens) const;
  int32_t take_page();
  void release_page(int32_t page);

  int64_t token_width_, page_size_, num_pages_;
  DType dtype_;
  int64_t rope_width_;
  int64_t row_bytes_;
  int64_t page_bytes_;
  struct AlignedDelete {
    void operator()(std::byte* p) const;
  };
  // On a 64-byte boundary, so rows whose width is a multiple of 64 bytes (every float and bf16
  // DeepSeek row) start on a cache line: vector loads of them never split.
  std::unique_ptr<std::byte[], AlignedDelete> storage_;
  std::vector<int32_t> refcount_;
  std::vector<int32_t> free_pages_;
  std::vector<Sequence> sequences_;
  // Held by pointer so that pools stay movable (a vector of pools, one per layer).
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
};

}  // namespace mla
