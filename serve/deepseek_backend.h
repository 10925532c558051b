// mla serve over a whole DeepSeek checkpoint folder: the model's paged latent caches as the
// scheduler's SequenceModel, and its tokenizer.json / chat template as the TextModel.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "mla/chat_template.h"
#include "mla/model.h"
#include "mla/tokenizer.h"
#include "sequence_model.h"
#include "text_model.h"

namespace mla::serve {

class DeepseekSequenceModel : public SequenceModel {
 public:
  DeepseekSequenceModel(DeepseekModel& model, std::string name);
  std::string name() const override { return name_; }
  int64_t vocab_size() const override;
  int64_t max_positions() const override;
  int64_t page_size() const override { return model_.page_size(); }
  int64_t pages_total() const override { return model_.pages_total(); }
  int64_t pages_free() const override { return model_.pages_free(); }
  SeqId add_sequence() override { return model_.add_sequence(); }
  SeqId fork_sequence(SeqId parent) override { return model_.fork_sequence(parent); }
  void truncate_sequence(SeqId seq, int64_t length) override {
    model_.truncate_sequence(seq, length);
  }
  void remove_sequence(SeqId seq) override { model_.remove_sequence(seq); }
  int64_t sequence_length(SeqId seq) const override { return model_.length(seq); }
  void step(std::span<const SeqId> seqs, std::span<const std::span<const int32_t>> tokens,
            std::span<float> logits) override;

 private:
  DeepseekModel& model_;
  std::string name_;
  std::vector<int32_t> packed_;  // scheduler thread only
  std::vector<int64_t> counts_;
};

class TokenizerTextModel : public TextModel {
 public:
  // Reads DIR/tokenizer.json (+ tokenizer_config.json, whose chat_template is optional: without
  // one, chat requests are refused). `eos` adds the config's eos_token_id.
  TokenizerTextModel(const std::string& dir, std::optional<int32_t> config_eos);
  std::vector<int32_t> encode_prompt(const std::string& text) const override;
  std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages) const override;
  std::string token_bytes(int32_t token) const override;
  std::vector<int32_t> eos_tokens() const override { return eos_; }
  int32_t vocab_size() const { return tokenizer_.vocab_size(); }
  // Why chat requests are refused ("" when the model has a chat template).
  const std::string& chat_error() const { return chat_error_; }

 private:
  Tokenizer tokenizer_;
  std::optional<ChatTemplate> chat_;
  std::string chat_error_;
  std::vector<int32_t> eos_;
};

}  // namespace mla::serve
