#include <charconv>
#include <string>
#include <string_view>

#include "mla/error.h"
#include "mla/sparse.h"

namespace mla {
namespace {

// Large enough for any real context, small enough that products with head counts stay in range.
constexpr int64_t kMaxCount = int64_t{1} << 31;

void check_range(const char* field, int64_t value, int64_t low) {
  if (value < low || value >= kMaxCount) {
    throw Error(std::string("sparse: ") + field + ": must be between " + std::to_string(low) +
                " and " + std::to_string(kMaxCount - 1) + ", got " + std::to_string(value));
  }
}

const char* kind_name(SparseKind kind) {
  switch (kind) {
    case SparseKind::kWindow:
      return "window";
    case SparseKind::kBlock:
      return "block";
    case SparseKind::kTopK:
      return "topk";
    case SparseKind::kDsa:
      return "dsa";
    case SparseKind::kDense:
      break;
  }
  return "dense";
}

}  // namespace

void SparseSpec::validate(int64_t num_heads) const {
  switch (kind) {
    case SparseKind::kWindow:
      check_range("size", window, 1);
      break;
    case SparseKind::kBlock:
      check_range("size", block_size, 1);
      check_range("local", local_blocks, 1);  // the own block keeps every query's row non-empty
      check_range("global", global_blocks, 0);
      break;
    case SparseKind::kTopK:
    case SparseKind::kDsa:
      check_range("k", top_k, 1);
      break;
    case SparseKind::kDense:
      break;
  }
  check_range("dense-heads", dense_heads, 0);
  if (num_heads > 0 && dense_heads > num_heads) {
    throw Error("sparse: dense-heads: " + std::to_string(dense_heads) + " is more than the " +
                std::to_string(num_heads) + " heads");
  }
}

std::string SparseSpec::to_string() const {
  std::string s = kind_name(kind);
  switch (kind) {
    case SparseKind::kWindow:
      s += ":size=" + std::to_string(window);
      break;
    case SparseKind::kBlock:
      s += ":size=" + std::to_string(block_size) + ",local=" + std::to_string(local_blocks) +
           ",global=" + std::to_string(global_blocks);
      break;
    case SparseKind::kTopK:
    case SparseKind::kDsa:
      s += ":k=" + std::to_string(top_k);
      break;
    case SparseKind::kDense:
      break;
  }
  if (dense_heads > 0)
    s += std::string(kind == SparseKind::kDense ? ":" : ",") +
         "dense-heads=" + std::to_string(dense_heads);
  return s;
}

SparseSpec parse_sparse_spec(const std::string& text) {
  const auto fail = [&text](const std::string& why) {
    return Error("sparse: '" + text + "': " + why);
  };
  SparseSpec spec;
  const size_t colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  if (kind == "dense") {
    spec.kind = SparseKind::kDense;
  } else if (kind == "window") {
    spec.kind = SparseKind::kWindow;
  } else if (kind == "block") {
    spec.kind = SparseKind::kBlock;
  } else if (kind == "topk") {
    spec.kind = SparseKind::kTopK;
  } else if (kind == "dsa") {
    spec.kind = SparseKind::kDsa;
  } else {
    throw fail("unknown pattern '" + kind + "' (use dense, window, block, topk or dsa)");
  }
  if (colon == std::string::npos) {
    spec.validate();
    return spec;
  }
  std::string_view rest(text);
  rest.remove_prefix(colon + 1);
  if (rest.empty()) throw fail("nothing after ':'");
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (comma != std::string_view::npos && rest.empty()) throw fail("trailing ','");
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) throw fail("'" + std::string(item) + "' is not key=value");
    const std::string key(item.substr(0, eq));
    const std::string_view number = item.substr(eq + 1);
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size()) {
      throw fail(key + ": '" + std::string(number) + "' is not an integer");
    }
    int64_t* field = nullptr;
    if (key == "dense-heads") {
      field = &spec.dense_heads;
    } else if (key == "size" && spec.kind == SparseKind::kWindow) {
      field = &spec.window;
    } else if (key == "size" && spec.kind == SparseKind::kBlock) {
      field = &spec.block_size;
    } else if (key == "local" && spec.kind == SparseKind::kBlock) {
      field = &spec.local_blocks;
    } else if (key == "global" && spec.kind == SparseKind::kBlock) {
      field = &spec.global_blocks;
    } else if (key == "k" && (spec.kind == SparseKind::kTopK || spec.kind == SparseKind::kDsa)) {
      field = &spec.top_k;
    } else {
      throw fail("unknown key '" + key + "' for " + kind);
    }
    *field = value;
  }
  spec.validate();
  return spec;
}

}  // namespace mla
