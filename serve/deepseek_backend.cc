#include "deepseek_backend.h"

#include <algorithm>

#include "mla/error.h"

namespace mla::serve {

DeepseekSequenceModel::DeepseekSequenceModel(DeepseekModel& model, std::string name)
    : model_(model), name_(std::move(name)) {}

int64_t DeepseekSequenceModel::vocab_size() const {
  return model_.config().vocab_size;
}

int64_t DeepseekSequenceModel::max_positions() const {
  return model_.config().attention.max_position_embeddings;
}

void DeepseekSequenceModel::step(std::span<const SeqId> seqs,
                                 std::span<const std::span<const int32_t>> tokens,
                                 std::span<float> logits) {
  packed_.clear();
  counts_.clear();
  for (const auto& t : tokens) {
    packed_.insert(packed_.end(), t.begin(), t.end());
    counts_.push_back(static_cast<int64_t>(t.size()));
  }
  model_.forward_last(packed_, seqs, counts_, logits);
}

TokenizerTextModel::TokenizerTextModel(const std::string& dir, std::optional<int32_t> config_eos)
    : tokenizer_(Tokenizer::from_dir(dir)) {
  try {
    chat_ = ChatTemplate::from_model(dir);
  } catch (const Error& e) {
    // A model without a usable chat template still serves /v1/completions; chat requests say
    // why.
    chat_error_ = e.what();
  }
  if (tokenizer_.eos_id()) eos_.push_back(*tokenizer_.eos_id());
  if (config_eos && std::find(eos_.begin(), eos_.end(), *config_eos) == eos_.end()) {
    eos_.push_back(*config_eos);
  }
}

std::vector<int32_t> TokenizerTextModel::encode_prompt(const std::string& text) const {
  return tokenizer_.encode(text, /*add_special=*/true);
}

std::vector<int32_t> TokenizerTextModel::encode_chat(
    const std::vector<ChatMessage>& messages) const {
  if (!chat_) {
    throw Error("this model has no usable chat template (" + chat_error_ +
                "): use /v1/completions");
  }
  // The template writes bos itself; special-token text in the rendering is matched.
  return tokenizer_.encode(chat_->apply(messages, /*add_generation_prompt=*/true), false);
}

std::string TokenizerTextModel::token_bytes(int32_t token) const {
  return tokenizer_.is_special(token) ? std::string() : tokenizer_.token_bytes(token);
}

}  // namespace mla::serve
