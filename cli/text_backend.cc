#include "text_backend.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "deepseek_backend.h"
#include "mla/error.h"
#include "mla/lm_decoder.h"
#include "mla/model.h"
#include "mla/train_checkpoint.h"
#include "mla/train_data.h"
#include "model_dir.h"

namespace mla::cli {
namespace {

class DeepseekBackend : public TextBackend {
 public:
  DeepseekBackend(const std::string& dir, const TextBackendOptions& options)
      : model_(load(dir, options)),
        text_(dir, model_.config().eos_token_id >= 0
                       ? std::optional<int32_t>(static_cast<int32_t>(model_.config().eos_token_id))
                       : std::nullopt),
        dir_(dir) {
    if (text_.vocab_size() > model_.config().vocab_size) {
      throw Error(dir + "/tokenizer.json: " + std::to_string(text_.vocab_size()) +
                  " tokens, but the model's vocab_size is " +
                  std::to_string(model_.config().vocab_size));
    }
    seq_ = model_.add_sequence();
  }
  std::vector<int32_t> encode_prompt(const std::string& text) const override {
    return text_.encode_prompt(text);
  }
  std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages) const override {
    return text_.encode_chat(messages);
  }
  std::string token_bytes(int32_t token) const override { return text_.token_bytes(token); }
  std::vector<int32_t> eos_tokens() const override { return text_.eos_tokens(); }
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  int64_t max_positions() const override {
    return std::min<int64_t>(model_.config().attention.max_position_embeddings,
                             model_.pages_total() * model_.page_size());
  }
  std::span<const float> feed(std::span<const int32_t> tokens) override {
    logits_.resize(static_cast<size_t>(vocab_size()));
    const int64_t n = static_cast<int64_t>(tokens.size());
    model_.forward_last(tokens, std::span<const DeepseekModel::SeqId>(&seq_, 1),
                        std::span<const int64_t>(&n, 1), logits_);
    return logits_;
  }
  void feed_all(std::span<const int32_t> tokens, std::vector<float>& logits) override {
    logits.resize(tokens.size() * static_cast<size_t>(vocab_size()));
    const int64_t n = static_cast<int64_t>(tokens.size());
    model_.forward(tokens, std::span<const DeepseekModel::SeqId>(&seq_, 1),
                   std::span<const int64_t>(&n, 1), logits);
  }
  void truncate(int64_t length) override { model_.truncate_sequence(seq_, length); }
  int64_t length() const override { return model_.length(seq_); }
  void reset() override {
    model_.remove_sequence(seq_);
    seq_ = model_.add_sequence();
  }
  std::string describe() const override {
    return dir_ + " (" + model_.config().architecture + ", " +
           std::string(dtype_name(model_.weight_dtype())) + " weights)";
  }

 private:
  static DeepseekModel load(const std::string& dir, const TextBackendOptions& options) {
    DeepseekModel::Options o;
    set_weight_dtype(options.weight_dtype, dir, o);
    set_cache_dtype(options.cache_dtype, o);
    o.cache_tokens = options.cache_tokens;
    return DeepseekModel::load(dir, o);
  }
  DeepseekModel model_;
  serve::TokenizerTextModel text_;
  std::string dir_;
  DeepseekModel::SeqId seq_ = -1;
  std::vector<float> logits_;
};

// A model `mla train` wrote: bytes are its tokens, LmDecoder its cache.
class TrainedBackend : public TextBackend {
 public:
  TrainedBackend(const std::string& path, int64_t cache_tokens)
      : model_(load_model_checkpoint(path)),
        capacity_(std::min<int64_t>(cache_tokens, model_.config().max_seq_len)),
        decoder_(model_, capacity_),
        path_(path) {}
  std::vector<int32_t> encode_prompt(const std::string& text) const override {
    return encode_bytes(text);
  }
  std::vector<int32_t> encode_chat(const std::vector<ChatMessage>&) const override {
    throw Error(path_ +
                ": a byte-level model trained by `mla train` has no chat template "
                "(use --prompt without --chat)");
  }
  std::string token_bytes(int32_t token) const override {
    return std::string(1, static_cast<char>(token));
  }
  std::vector<int32_t> eos_tokens() const override { return {}; }
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  int64_t max_positions() const override { return capacity_; }
  std::span<const float> feed(std::span<const int32_t> tokens) override {
    const std::span<const float> l = decoder_.feed(tokens);
    fed_.insert(fed_.end(), tokens.begin(), tokens.end());
    return l;
  }
  void feed_all(std::span<const int32_t> tokens, std::vector<float>& logits) override {
    logits.clear();
    for (int32_t t : tokens) {
      const std::span<const float> l = feed(std::span<const int32_t>(&t, 1));
      logits.insert(logits.end(), l.begin(), l.end());
    }
  }
  void truncate(int64_t length) override {
    if (length == this->length()) return;
    // LmDecoder only appends: start again and replay the kept tokens.
    const std::vector<int32_t> keep(fed_.begin(), fed_.begin() + length);
    reset();
    if (!keep.empty()) feed(keep);
  }
  int64_t length() const override { return decoder_.length(); }
  void reset() override {
    decoder_ = LmDecoder(model_, capacity_);
    fed_.clear();
  }
  std::string describe() const override { return path_ + " (trained by mla train, bytes)"; }

 private:
  LmModel model_;
  int64_t capacity_;
  LmDecoder decoder_;
  std::string path_;
  std::vector<int32_t> fed_;
};

bool is_whole_model_dir(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path config = fs::path(path) / "config.json";
  std::error_code ec;
  if (!fs::is_regular_file(config, ec)) return false;
  std::ifstream in(config);
  std::stringstream text;
  text << in.rdbuf();
  return is_whole_model_config_json(text.str());
}

}  // namespace

std::unique_ptr<TextBackend> open_text_backend(const std::string& path,
                                               const TextBackendOptions& options) {
  if (is_whole_model_dir(path)) return std::make_unique<DeepseekBackend>(path, options);
  if (!options.weight_dtype.empty()) {
    throw Error("--weight-dtype: applies to DeepSeek checkpoint folders, not to " + path);
  }
  if (!options.cache_dtype.empty()) {
    throw Error("--cache-dtype: applies to DeepSeek checkpoint folders, not to " + path);
  }
  return std::make_unique<TrainedBackend>(path, options.cache_tokens);
}

}  // namespace mla::cli
