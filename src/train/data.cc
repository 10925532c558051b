// Byte tokenizer, generated data and text splits (include/mla/train_data.h).
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

TrainData TrainData::generated(std::string name, SequenceGenerator generator) {
  if (!generator) throw Error(name + ": no sequence generator");
  TrainData d;
  d.generator_ = std::move(generator);
  d.name_ = std::move(name);
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
  d.name_ = std::move(name);
  d.fingerprint_ = fnv1a(text);
  const std::vector<int32_t> all = encode_bytes(text);
  d.train_.assign(all.begin(), all.end() - val);
  d.val_.assign(all.end() - val, all.end());
  return d;
}

void TrainData::fill(std::mt19937_64& rng, const std::vector<int32_t>& text, int64_t seq,
                     int32_t* tokens, int32_t* targets) const {
  if (generator_) return generator_(rng, seq, tokens, targets);
  if (static_cast<int64_t>(text.size()) < seq + 1) {
    throw Error(name_ + ": split of " + std::to_string(text.size()) +
                " bytes is shorter than sequence length + 1 = " + std::to_string(seq + 1));
  }
  const int64_t start = draw(rng, static_cast<int64_t>(text.size()) - seq);
  std::copy_n(text.begin() + start, seq, tokens);
  std::copy_n(text.begin() + start + 1, seq, targets);
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
