#include "train_tasks.h"

#include <algorithm>
#include <vector>

#include "mla/error.h"

namespace mla::cli {
namespace {

// rng() % n: exact same numbers on every platform, unlike std::uniform_int_distribution.
int64_t draw(std::mt19937_64& rng, int64_t n) {
  return static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
}

constexpr int32_t kSeparator = '|';

// Writes a task sequence of S + 1 bytes as inputs (first S) and targets (last S); `scored[i]`
// says whether byte i + 1 is scored.
void emit(const std::vector<int32_t>& bytes, const std::vector<bool>& scored, int64_t seq,
          int32_t* tokens, int32_t* targets) {
  for (int64_t i = 0; i < seq; ++i) {
    tokens[i] = bytes[static_cast<size_t>(i)];
    targets[i] = scored[static_cast<size_t>(i + 1)] ? bytes[static_cast<size_t>(i + 1)] : -1;
  }
}

void recall_sequence(std::mt19937_64& rng, int64_t seq, int32_t* tokens, int32_t* targets) {
  // About half the sequence holds pairs, the rest queries; at most 26 distinct keys.
  const int64_t pairs = std::clamp<int64_t>((seq + 1) / 4, 1, 26);
  std::vector<int32_t> keys(26);
  for (int32_t i = 0; i < 26; ++i) keys[static_cast<size_t>(i)] = 'a' + i;
  for (int64_t i = 0; i < pairs; ++i)
    std::swap(keys[static_cast<size_t>(i)], keys[static_cast<size_t>(i + draw(rng, 26 - i))]);
  std::vector<int32_t> values(static_cast<size_t>(pairs));
  std::vector<int32_t> bytes;
  std::vector<bool> scored;
  for (int64_t i = 0; i < pairs; ++i) {
    values[static_cast<size_t>(i)] = '0' + static_cast<int32_t>(draw(rng, 10));
    bytes.insert(bytes.end(), {keys[static_cast<size_t>(i)], values[static_cast<size_t>(i)]});
    scored.insert(scored.end(), {false, false});
  }
  bytes.push_back(kSeparator);
  scored.push_back(false);
  while (static_cast<int64_t>(bytes.size()) < seq + 1) {
    const int64_t q = draw(rng, pairs);
    bytes.push_back(keys[static_cast<size_t>(q)]);
    scored.push_back(false);
    bytes.push_back(values[static_cast<size_t>(q)]);
    scored.push_back(true);
  }
  emit(bytes, scored, seq, tokens, targets);
}

void copy_sequence(std::mt19937_64& rng, int64_t seq, int32_t* tokens, int32_t* targets) {
  const int64_t len = std::max<int64_t>(1, seq / 2);
  std::vector<int32_t> bytes;
  std::vector<bool> scored;
  for (int64_t i = 0; i < len; ++i) {
    bytes.push_back('a' + static_cast<int32_t>(draw(rng, 26)));
    scored.push_back(false);
  }
  bytes.push_back(kSeparator);
  scored.push_back(false);
  for (int64_t i = 0; static_cast<int64_t>(bytes.size()) < seq + 1; ++i) {
    bytes.push_back(bytes[static_cast<size_t>(i % len)]);
    scored.push_back(true);
  }
  emit(bytes, scored, seq, tokens, targets);
}

}  // namespace

TrainData task_data(const std::string& name) {
  if (name == "recall") return TrainData::generated(name, recall_sequence);
  if (name == "copy") return TrainData::generated(name, copy_sequence);
  throw Error("task: unknown task '" + name + "' (choices: recall, copy)");
}

TrainData train_data(const TrainOptions& options) {
  if (options.data_path.empty()) return task_data(options.task);
  return TrainData::from_file(options.data_path, options.val_fraction, options.seq);
}

}  // namespace mla::cli
