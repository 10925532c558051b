"""A drop-in for Hugging Face's DeepseekV2Attention / DeepseekV3Attention (the modeling_deepseek.py
that DeepSeek publishes with its checkpoints), over our kernels.

DeepseekV3Attention(config, layer_idx) takes the model's config object (a DeepseekV3Config, or
anything with its attribute names) and has its forward's signature:

    attn_output, attn_weights, past_key_value = attn(
        hidden_states, attention_mask=None, position_ids=None, past_key_value=None,
        output_attentions=False, use_cache=False)

The state_dict is the checkpoint's (`model.layers.N.self_attn.` + q_a_proj.weight, ...), so a
layer loads with load_state_dict. past_key_value is a LatentCache: per layer the normalised c_kv
and the rotary key (kv_lora_rank + qk_rope_head_dim numbers per token, shared by all heads)
instead of the per-head keys and values of a DynamicCache. What the kernels do not serve is
refused with ValueError: a padding mask (only the causal mask, as a 4-D additive or boolean mask,
or a 2-D mask of ones), positions other than past_length + arange(q_len), and attention weights
of a cached step.
"""

import json

import torch

from .. import _mla
from ..presets import LatentKvCache
from .modules import MultiHeadLatentAttention, check_input


def config_from_hf(config):
    """An mla.Config from a Hugging Face DeepseekV2/V3 config object (or a dict)."""
    get = (lambda k, d=None: config.get(k, d)) if isinstance(config, dict) else \
        (lambda k, d=None: getattr(config, k, d))
    if get("attention_bias", False):
        raise ValueError("config: attention_bias=True is not supported (DeepSeek checkpoints "
                         "have none)")
    fields = {k: get(k) for k in ("hidden_size", "num_attention_heads", "kv_lora_rank",
                                  "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")}
    missing = [k for k, v in fields.items() if v is None]
    if missing:
        raise ValueError(f"config: missing {', '.join(missing)}")
    fields["q_lora_rank"] = get("q_lora_rank") or None  # JSON null: no query compression
    for k, default in (("rms_norm_eps", 1e-6), ("rope_theta", 10000.0),
                       ("max_position_embeddings", 4096)):
        fields[k] = get(k, default)
    if get("rope_scaling"):
        fields["rope_scaling"] = dict(get("rope_scaling"))
    c = _mla.Config.from_json(json.dumps(fields))
    c.attention_dropout = float(get("attention_dropout", 0.0) or 0.0)
    c.validate()
    return c


class LatentCache:
    """The past_key_value of DeepseekV3Attention: one growing latent cache per layer_idx."""

    def __init__(self):
        self.layers = {}

    def get_seq_length(self, layer_idx=0):
        """Tokens cached for layer `layer_idx` (0 when it has none yet)."""
        c = self.layers.get(layer_idx)
        return 0 if c is None else c.length

    def layer(self, layer_idx, config, batch):
        """The latent cache of one layer, created on first use."""
        c = self.layers.get(layer_idx)
        if c is None:
            c = self.layers[layer_idx] = LatentKvCache(config, batch)
        elif c.batch != batch:
            raise ValueError(f"past_key_value: layer {layer_idx} caches {c.batch} sequences, "
                             f"hidden_states has {batch}")
        return c

    def __len__(self):
        return len(self.layers)

    @property
    def bytes_per_token(self):
        """Cache bytes per token over all layers."""
        return sum(c.cache.bytes_per_token for c in self.layers.values())


def _check_positions(position_ids, bsz, past, q_len):
    if position_ids is None:
        return
    want = torch.arange(past, past + q_len).expand(bsz, q_len)
    got = torch.as_tensor(position_ids)
    if got.dim() == 1:
        got = got.unsqueeze(0)
    if got.shape[-1] != q_len or not torch.equal(got.to(torch.int64).expand(bsz, q_len), want):
        raise ValueError(f"position_ids: must be past_length + arange(q_len) = {past}..."
                         f"{past + q_len - 1} for every sequence (no padding), got "
                         f"{got.tolist()}")


def _check_causal_mask(mask, bsz, q_len, kv_len):
    if mask is None:
        return
    if mask.dim() == 2:  # (bsz, kv_len) of ones: no padding
        if tuple(mask.shape) != (bsz, kv_len) or not bool((mask != 0).all()):
            raise ValueError("attention_mask: a 2-D mask must be all ones of shape "
                             f"({bsz}, {kv_len}) (padding is not supported)")
        return
    if mask.dim() != 4 or mask.shape[-2:] != (q_len, kv_len):
        raise ValueError(f"attention_mask: expected shape ({bsz}, 1, {q_len}, {kv_len}), got "
                         f"{tuple(mask.shape)}")
    masked = ~mask if mask.dtype == torch.bool else mask < -1e4
    causal = torch.ones(q_len, kv_len, dtype=torch.bool).triu(kv_len - q_len + 1)
    if not bool((masked == causal).all()):
        raise ValueError("attention_mask: only the causal mask is supported (no padding, no "
                         "custom pattern)")


# What newer callers pass that changes nothing here (flash-attention and logging options).
_IGNORED_KWARGS = {"padding_mask", "is_causal", "sliding_window", "dropout", "scaling"}


class DeepseekV3Attention(MultiHeadLatentAttention):
    """Hugging Face's DeepseekV3Attention(config, layer_idx) over our kernels (module doc)."""

    def __init__(self, config, layer_idx=None, seed=0, train_form="naive"):
        super().__init__(config_from_hf(config), seed, train_form)
        self.layer_idx = 0 if layer_idx is None else layer_idx
        c = self.config
        self.hidden_size, self.num_heads = c.hidden_size, c.num_heads
        self.q_head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim
        self.softmax_scale = c.softmax_scale

    def forward(self, hidden_states, attention_mask=None, position_ids=None,
                past_key_value=None, output_attentions=False, use_cache=False,
                position_embeddings=None, cache_position=None, **kwargs):
        """Returns (attn_output, attn_weights or None, past_key_value) as modeling_deepseek.py.
        position_embeddings / cache_position / past_key_values are accepted for newer callers;
        the rotary angles always come from the config (rope_theta, rope_scaling) at
        past_length + arange(q_len). Other unknown keywords raise TypeError."""
        if "past_key_values" in kwargs:  # newer transformers' name for it
            if past_key_value is not None:
                raise ValueError("past_key_value and past_key_values: pass one of them")
            past_key_value = kwargs.pop("past_key_values")
        unknown = sorted(k for k in kwargs if k not in _IGNORED_KWARGS)
        if unknown:
            raise TypeError(f"DeepseekV3Attention.forward: unexpected arguments {unknown}")
        check_input(hidden_states, self.config.hidden_size, "hidden_states")
        if hidden_states.dim() != 3:
            raise ValueError("hidden_states: expected (batch, seq, hidden), got "
                             f"{tuple(hidden_states.shape)}")
        bsz, q_len, _ = hidden_states.shape
        cache = past_key_value
        if cache is not None and not isinstance(cache, LatentCache):
            raise TypeError("past_key_value: expected an mla.torch.LatentCache (a latent cache), "
                            f"got {type(cache).__name__}")
        past = cache.get_seq_length(self.layer_idx) if cache is not None else 0
        _check_positions(position_ids, bsz, past, q_len)
        _check_causal_mask(attention_mask, bsz, q_len, past + q_len)
        if cache is None and use_cache:
            cache = LatentCache()
        attn_weights = None
        if output_attentions:
            if past > 0:
                raise ValueError("output_attentions: only for a prefill without cached tokens")
            attn_weights = self.attention_weights(hidden_states).to(hidden_states.dtype)
        if cache is None:
            out = super().forward(hidden_states)
        else:
            lc = cache.layer(self.layer_idx, self.config, bsz)
            lc.reserve(q_len)
            out = super().forward(hidden_states, lc.cache)
        return out, attn_weights, cache


DeepseekV2Attention = DeepseekV3Attention
