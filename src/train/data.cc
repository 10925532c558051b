// Byte tokenizer, synthetic attention tasks and text splits (include/mla/train_data.h).
#include <algorithm>
#include <fstream>
#include <sstream>

#include "mla/error.h"
#include "mla/train_data.h"

namespace mla {
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

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

std::vector<int32_t> encode_bytes(std::string_view text) {
  std::vector<int32_t> out(text.size());
  for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<unsigned char>(text[i]);
  return out;
}

std::string decode_bytes(std::span<const int32_t> tokens) {
  std::string out(tokens.size(), '?');
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] >= 0 && tokens[i] < kByteVocab)
      out[i] = static_cast<char>(static_cast<unsigned char>(tokens[i]));
  }
  return out;
}

const char* task_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::kRecall:
      return "recall";
    case TaskKind::kCopy:
      return "copy";
    case TaskKind::kText:
      return "text";
  }
  return "?";
}

TaskKind parse_task(const std::string& name) {
  if (name == "recall") return TaskKind::kRecall;
  if (name == "copy") return TaskKind::kCopy;
  throw Error("task: unknown task '" + name + "' (choices: recall, copy)");
}

TrainData TrainData::synthetic(TaskKind kind) {
  if (kind == TaskKind::kText) throw Error("task: text data needs a file (--data FILE)");
  TrainData d;
  d.kind_ = kind;
  d.name_ = task_name(kind);
  return d;
}

TrainData TrainData::from_file(const std::string& path, double val_fraction, int64_t seq) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open data file");
  std::ostringstream text;
  text << in.rdbuf();
  return from_text(text.str(), val_fraction, seq, path);
}

TrainData TrainData::from_text(std::string text, double val_fraction, int64_t seq,
                               std::string name) {
  if (!(val_fraction > 0.0 && val_fraction < 1.0)) {
    throw Error(name + ": the validation fraction must be in (0, 1), got " +
                std::to_string(val_fraction));
  }
  const auto size = static_cast<int64_t>(text.size());
  const int64_t val =
      std::max<int64_t>(static_cast<int64_t>(static_cast<double>(size) * val_fraction), seq + 1);
  if (size - val < seq + 1) {
    throw Error(name + ": " + std::to_string(size) +
                " bytes are too few for a training and a validation split of " +
                std::to_string(seq + 1) + " bytes each (sequence length " + std::to_string(seq) +
                ")");
  }
  TrainData d;
  d.kind_ = TaskKind::kText;
  d.name_ = std::move(name);
  d.fingerprint_ = fnv1a(text);
  const std::vector<int32_t> all = encode_bytes(text);
  d.train_.assign(all.begin(), all.end() - val);
  d.val_.assign(all.end() - val, all.end());
  return d;
}

void TrainData::fill(std::mt19937_64& rng, const std::vector<int32_t>& text, int64_t seq,
                     int32_t* tokens, int32_t* targets) const {
  switch (kind_) {
    case TaskKind::kRecall:
      return recall_sequence(rng, seq, tokens, targets);
    case TaskKind::kCopy:
      return copy_sequence(rng, seq, tokens, targets);
    case TaskKind::kText: {
      if (static_cast<int64_t>(text.size()) < seq + 1) {
        throw Error(name_ + ": split of " + std::to_string(text.size()) +
                    " bytes is shorter than sequence length + 1 = " + std::to_string(seq + 1));
      }
      const int64_t start = draw(rng, static_cast<int64_t>(text.size()) - seq);
      std::copy_n(text.begin() + start, seq, tokens);
      std::copy_n(text.begin() + start + 1, seq, targets);
      return;
    }
  }
}

TrainBatch TrainData::train_batch(std::mt19937_64& rng, int64_t batch, int64_t seq) const {
  TrainBatch b{batch, seq, std::vector<int32_t>(static_cast<size_t>(batch * seq)),
               std::vector<int32_t>(static_cast<size_t>(batch * seq))};
  for (int64_t i = 0; i < batch; ++i)
    fill(rng, train_, seq, b.tokens.data() + i * seq, b.targets.data() + i * seq);
  return b;
}

TrainBatch TrainData::val_batch(int64_t index, int64_t batch, int64_t seq) const {
  // Its own generator per batch, seeded apart from any training seed: the validation set is the
  // same for every run and every call.
  std::mt19937_64 rng(0x5eed0fa11da7a000ull + static_cast<uint64_t>(index));
  TrainBatch b{batch, seq, std::vector<int32_t>(static_cast<size_t>(batch * seq)),
               std::vector<int32_t>(static_cast<size_t>(batch * seq))};
  for (int64_t i = 0; i < batch; ++i)
    fill(rng, val_, seq, b.tokens.data() + i * seq, b.targets.data() + i * seq);
  return b;
}

}  // namespace mla
