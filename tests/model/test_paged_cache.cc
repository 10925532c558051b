// PagedKvPool: page accounting, copy on write, all-or-nothing reservation, exact errors.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mla/error.h"
#include "mla/paged_cache.h"
#include "test_util.h"

namespace mla {
namespace {

using test::error_of;

void append(PagedKvPool& pool, PagedKvPool::SeqId seq, int64_t n, float value) {
  const int64_t one[] = {n};
  const PagedKvPool::SeqId ids[] = {seq};
  pool.reserve(ids, one);
  const int64_t start = pool.length(seq);
  for (int64_t t = 0; t < n; ++t) {
    auto* row = static_cast<float*>(pool.writable_row(seq, start + t));
    for (int64_t i = 0; i < pool.token_width(); ++i) row[i] = value + static_cast<float>(start + t);
  }
  pool.commit(seq, n);
}

float first_value(const PagedKvPool& pool, PagedKvPool::SeqId seq, int64_t pos) {
  return *static_cast<const float*>(pool.row(seq, pos));
}

TEST(PagedKvPool, AccountsPagesExactly) {
  PagedKvPool pool(/*token_width=*/576, /*page_size=*/64, /*num_pages=*/10);
  EXPECT_EQ(pool.page_bytes(), 64 * 576 * 4);
  EXPECT_EQ(pool.bytes_total(), 10 * 64 * 576 * 4);
  auto a = pool.add_sequence();
  append(pool, a, 65, 0.0f);
  EXPECT_EQ(pool.pages_used(), 2);
  EXPECT_EQ(pool.bytes_used(), 2 * pool.page_bytes());
  append(pool, a, 63, 0.0f);
  EXPECT_EQ(pool.pages_used(), 2);
  append(pool, a, 1, 0.0f);
  EXPECT_EQ(pool.pages_used(), 3);
  pool.remove_sequence(a);
  EXPECT_EQ(pool.pages_used(), 0);
  EXPECT_EQ(PagedKvPool::pages_for_bytes(1 << 20, 576, 64, DType::kBF16),
            (1 << 20) / (64 * 576 * 2));
}

TEST(PagedKvPool, RowsLandInTheirPages) {
  for (int64_t page_size : {1, 3, 16, 64, 256}) {
    PagedKvPool pool(4, page_size, 200);
    auto a = pool.add_sequence(), b = pool.add_sequence();
    for (int step = 0; step < 10; ++step) {  // interleave so pages alternate between sequences
      append(pool, a, 7, 1000.0f);
      append(pool, b, 5, 5000.0f);
    }
    for (int64_t t = 0; t < 70; ++t)
      ASSERT_EQ(first_value(pool, a, t), 1000.0f + static_cast<float>(t));
    for (int64_t t = 0; t < 50; ++t)
      ASSERT_EQ(first_value(pool, b, t), 5000.0f + static_cast<float>(t));
  }
}

TEST(PagedKvPool, OutOfPagesChangesNothing) {
  PagedKvPool pool(8, 4, 3);
  auto a = pool.add_sequence(), b = pool.add_sequence();
  append(pool, a, 6, 0.0f);  // 2 pages
  const PagedKvPool::SeqId ids[] = {a, b};
  const int64_t counts[] = {2, 5};  // a fits in its page; b needs 2 pages, only 1 free
  EXPECT_EQ(error_of([&] { pool.reserve(ids, counts); }),
            "cache: out of pages: need 2 more, 1 free of 3 (page size 4)");
  EXPECT_EQ(pool.length(a), 6);
  EXPECT_EQ(pool.length(b), 0);
  EXPECT_EQ(pool.pages_used(), 2);
  EXPECT_EQ(first_value(pool, a, 5), 5.0f);
}

TEST(PagedKvPool, ForkSharesThenCopiesOnWrite) {
  PagedKvPool pool(2, 4, 10);
  auto parent = pool.add_sequence();
  append(pool, parent, 6, 100.0f);  // pages: [0..3] full, [4..5] partial
  auto child = pool.fork(parent);
  EXPECT_EQ(pool.pages_used(), 2);  // shared
  EXPECT_EQ(pool.length(child), 6);
  append(pool, child, 1, 900.0f);  // writes into the shared partial page: copied first
  EXPECT_EQ(pool.pages_used(), 3);
  EXPECT_EQ(first_value(pool, child, 6), 906.0f);
  EXPECT_EQ(first_value(pool, child, 5), 105.0f);  // copied content
  EXPECT_THROW(pool.row(parent, 6), Error);        // parent unchanged
  append(pool, parent, 1, 200.0f);
  EXPECT_EQ(first_value(pool, parent, 6), 206.0f);
  EXPECT_EQ(first_value(pool, child, 6), 906.0f);
  EXPECT_EQ(pool.page_table(parent)[0], pool.page_table(child)[0]);  // full page still shared
  pool.remove_sequence(parent);
  EXPECT_EQ(first_value(pool, child, 0), 100.0f);
  pool.remove_sequence(child);
  EXPECT_EQ(pool.pages_used(), 0);
}

TEST(PagedKvPool, TruncateFreesWholePages) {
  PagedKvPool pool(2, 4, 10);
  auto a = pool.add_sequence();
  append(pool, a, 10, 0.0f);
  EXPECT_EQ(pool.pages_used(), 3);
  pool.truncate(a, 4);
  EXPECT_EQ(pool.pages_used(), 1);
  append(pool, a, 1, 50.0f);
  EXPECT_EQ(first_value(pool, a, 4), 54.0f);
}

TEST(PagedKvPool, ErrorsAreExact) {
  EXPECT_EQ(error_of([] { PagedKvPool(4, 0, 1); }),
            "cache: page size must be between 1 and 256 tokens, got 0");
  EXPECT_EQ(error_of([] { PagedKvPool(4, 257, 1); }),
            "cache: page size must be between 1 and 256 tokens, got 257");
  EXPECT_EQ(error_of([] { PagedKvPool(4, 4, 0); }),
            "cache: the pool needs between 1 and 2^31-1 pages, got 0");
  EXPECT_EQ(error_of([] { PagedKvPool(4, 4, 1, DType::kF16); }),
            "cache: dtype must be F32, BF16, F8_E4M3 or I8, got F16");
  EXPECT_EQ(error_of([] { PagedKvPool(4, 4, 1, DType::kBF16, 2); }),
            "cache: rope width 2 needs a quantized dtype (F8_E4M3, I8) and must be below the "
            "token width 4");
  EXPECT_EQ(error_of([] { PagedKvPool(4, 4, 1, DType::kI8, 4); }),
            "cache: rope width 4 needs a quantized dtype (F8_E4M3, I8) and must be below the "
            "token width 4");
  PagedKvPool pool(4, 4, 2);
  EXPECT_EQ(error_of([&] { pool.length(7); }), "cache: unknown sequence 7");
  auto a = pool.add_sequence();
  EXPECT_EQ(error_of([&] { pool.writable_row(a, 0); }),
            "cache: position 0 of sequence 0 is not reserved for writing (length 0, reserved 0)");
  EXPECT_EQ(error_of([&] { pool.truncate(a, 1); }),
            "cache: cannot truncate sequence 0 of length 0 to 1");
  pool.remove_sequence(a);
  EXPECT_EQ(error_of([&] { pool.remove_sequence(a); }), "cache: unknown sequence 0");
  EXPECT_EQ(error_of([] { PagedKvPool::pages_for_bytes(10, 4, 4, DType::kF32); }),
            "cache: 10 bytes hold no page of 64 bytes");
}

}  // namespace
}  // namespace mla
