// The tensors of an LmModel declared once: every layer's norms, attention (MLA or the baseline)
// and feed-forward, then the embedding, final norm and head. for_each_tensor is the one list
// (Hugging Face names, buffer order): lm_parameter_list lays the flat buffer out from it, the
// model binds its parameter and gradient pointers with it and LmDecoder borrows the trained
// weights through it, so nothing else spells a tensor name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mla/error.h"
#include "mla/gqa_layer.h"
#include "mla/model_lm.h"
#include "mla/weights.h"
#include "train/ffn_block.h"

namespace mla::train {

template <typename Slot>
struct LmLayerTensorSet {
  Slot ln1_w{}, ln1_b{};   // input_layernorm; the bias under LayerNorm only
  MlaTensorSet<Slot> mla;  // attention == kMla
  GqaTensorSet<Slot> gqa;  // the baseline attention otherwise
  Slot ln2_w{}, ln2_b{};   // post_attention_layernorm
  FfnTensorSet<Slot> ffn;
};

template <typename Slot>
struct LmTensorSet {
  using slot_type = Slot;
  Slot wte{};                                  // (V, d)
  std::vector<LmLayerTensorSet<Slot>> layers;  // (L)
  Slot lnf_w{}, lnf_b{};                       // model.norm
  Slot head{};                                 // (V, d), untied embeddings only

  // Visits (full name, shape, slot) for every tensor of the config. A non-const set is sized
  // to the config's layers first; a const one must already be.
  template <typename Visit>
  void for_each_tensor(const LmConfig& config, Visit&& visit) {
    layers.resize(static_cast<size_t>(config.num_layers));
    visit_all(*this, config, visit);
  }
  template <typename Visit>
  void for_each_tensor(const LmConfig& config, Visit&& visit) const {
    if (static_cast<int64_t>(layers.size()) != config.num_layers) {
      throw Error("model tensors: " + std::to_string(layers.size()) + " layers bound for a " +
                  std::to_string(config.num_layers) + "-layer config");
    }
    visit_all(*this, config, visit);
  }

 private:
  template <typename Self, typename Visit>
  static void visit_all(Self& s, const LmConfig& c, Visit& visit) {
    const int64_t d = c.d_model;
    auto norm = [&](const std::string& name, auto& w, auto& b) {
      visit(name + ".weight", std::vector<int64_t>{d}, w);
      if (c.norm == NormKind::kLayerNorm) visit(name + ".bias", std::vector<int64_t>{d}, b);
    };
    auto under = [&](const std::string& prefix) {
      return [&visit, prefix](const std::string& name, const std::vector<int64_t>& shape,
                              auto& slot) { visit(prefix + name, shape, slot); };
    };
    visit(std::string("model.embed_tokens.weight"), std::vector<int64_t>{c.vocab_size, d}, s.wte);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      auto& layer = s.layers[static_cast<size_t>(l)];
      const std::string p = "model.layers." + std::to_string(l) + ".";
      norm(p + "input_layernorm", layer.ln1_w, layer.ln1_b);
      if (c.attention == AttentionKind::kMla) {
        layer.mla.for_each_tensor(c.mla, under(layer_prefix(l)));
      } else {
        layer.gqa.for_each_tensor(c.gqa, under(layer_prefix(l)));
      }
      norm(p + "post_attention_layernorm", layer.ln2_w, layer.ln2_b);
      layer.ffn.for_each_tensor(c, under(p));
    }
    norm("model.norm", s.lnf_w, s.lnf_b);
    if (!c.tied_embeddings) {
      visit(std::string("lm_head.weight"), std::vector<int64_t>{c.vocab_size, d}, s.head);
    }
  }
};

// The set bound to a flat buffer laid out by lm_parameter_list (unused tensors null; a tied
// head points at the embedding).
template <typename Ptr>
LmTensorSet<Ptr> bind_tensors(const LmConfig& config, const std::vector<ParamTensor>& list,
                              Ptr base) {
  LmTensorSet<Ptr> set;
  size_t i = 0;
  set.for_each_tensor(config, [&](const std::string&, const std::vector<int64_t>&, Ptr& slot) {
    slot = base + list[i++].offset;
  });
  if (config.tied_embeddings) set.head = set.wte;
  return set;
}

}  // namespace mla::train
