"""The reproduced systems' own constructors and call conventions, over mla.Layer (docs/presets.md).

Each class builds the MlaConfig the C++ library derives from the system's arguments
(include/mla/presets.h), so the mapping lives in one place, and then behaves as the system's
README shows.
"""

from dataclasses import field, make_dataclass

import numpy as np

from . import _mla
from .layer import Layer, as_input


def _seq_len(x):
    shape = np.shape(x) if not hasattr(x, "shape") else tuple(x.shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"x: expected shape (batch, seq, hidden) or (seq, hidden), got {shape}")
    return shape[-2]


class multiheadlatentattention(Layer):
    """MHLA: multiheadlatentattention(d_in, d_out, dl, num_head, dropout_rate,
    contextlenght). Inference: dropout_rate is kept in the config for training and not applied."""

    def __init__(self, d_in, d_out, dl, num_head, dropout_rate, contextlenght, seed=0):
        super().__init__(_mla.preset_mhla(d_in, d_out, dl, num_head, dropout_rate, contextlenght),
                         seed)
        self.contextlenght = contextlenght

    def __call__(self, x, cache=None, **kwargs):
        used = (cache.length if cache is not None else 0) + _seq_len(x)
        if used > self.contextlenght:
            raise ValueError(f"MHLA: {used} tokens exceed contextlenght {self.contextlenght}")
        return super().__call__(x, cache=cache, **kwargs)


MHLA = multiheadlatentattention


class MLAConfig:
    """The MLA package's MLAConfig(d_model, num_heads, kv_compressed_dim, q_compressed_dim, rope_dim,
    seq_len), plus its optional use_bias. q_compressed_dim=0 turns query compression off."""

    def __init__(self, d_model, num_heads, kv_compressed_dim, q_compressed_dim, rope_dim,
                 seq_len, use_bias=False):
        self.d_model, self.num_heads, self.seq_len = d_model, num_heads, seq_len
        self.kv_compressed_dim, self.q_compressed_dim = kv_compressed_dim, q_compressed_dim
        self.rope_dim, self.use_bias = rope_dim, use_bias
        self.config = _mla.preset_mla_config(d_model, num_heads, kv_compressed_dim,
                                           q_compressed_dim, rope_dim, seq_len, use_bias)

    def __repr__(self):
        return (f"MLAConfig(d_model={self.d_model}, num_heads={self.num_heads}, "
                f"kv_compressed_dim={self.kv_compressed_dim}, "
                f"q_compressed_dim={self.q_compressed_dim}, rope_dim={self.rope_dim}, "
                f"seq_len={self.seq_len}, use_bias={self.use_bias})")


class MLA(Layer):
    """The MLA package: MLA(MLAConfig(...))(x) for x (batch, seq_len, d_model)."""

    def __init__(self, config, seed=0):
        if not isinstance(config, MLAConfig):
            raise ValueError("MLA: expected an mla.MLAConfig")
        super().__init__(config.config, seed)
        self.mla_config = config

    def __call__(self, x, cache=None, **kwargs):
        used = (cache.length if cache is not None else 0) + _seq_len(x)
        if used > self.mla_config.seq_len:
            raise ValueError(f"MLA: {used} tokens exceed seq_len {self.mla_config.seq_len}")
        return super().__call__(x, cache=cache, **kwargs)


# The attention fields of DeepSeek-V3's ModelArgs with the official defaults, from the one field
# list of the C++ presets::ModelArgs.
ModelArgs = make_dataclass(
    "ModelArgs",
    [(name, type(value), field(default=value))
     for name, value in _mla.model_args_defaults().items()])
ModelArgs.__doc__ = "The attention fields of DeepSeek-V3's ModelArgs, with the official defaults."
ModelArgs.__module__ = __name__


class DeepSeekV3MLA(Layer):
    """DeepSeek-V3's MLA(args) with attn_impl "naive" (per-head K/V cache) or "absorb"
    (latent cache). Like the official module it keeps its own cache: call with start_pos = 0 to
    start a sequence, then with start_pos = the number of tokens already seen."""

    def __init__(self, args=None, attn_impl="absorb", seed=0):
        args = args if args is not None else ModelArgs()
        if attn_impl not in ("naive", "absorb"):
            raise ValueError(f"attn_impl: must be 'naive' or 'absorb', got '{attn_impl}'")
        super().__init__(_mla.preset_deepseek_v3(**vars(args)), seed)
        self.args, self.attn_impl, self.cache = args, attn_impl, None

    def __call__(self, x, start_pos=0):
        arr, _ = as_input(x)
        batch = 1 if arr.ndim == 2 else arr.shape[0]
        if start_pos == 0:
            kind = _mla.LatentCache if self.attn_impl == "absorb" else _mla.NaiveKvCache
            self.cache = kind(self.config, batch, self.args.max_seq_len)
        elif self.cache is None or start_pos != self.cache.length:
            have = 0 if self.cache is None else self.cache.length
            raise ValueError(f"start_pos: {start_pos} does not continue the cached {have} tokens")
        return super().__call__(x, cache=self.cache)


def attention_stats(weights, threshold=1e-3):
    """Per-head statistics of causal attention weights (..., H, S, S): mean entropy (nats) of a
    query's distribution, sparsity (share of the causally visible weights below `threshold`),
    and the mean largest weight."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 3:
        w = w[None]
    s = w.shape[-1]
    visible = np.tril(np.ones((s, s), dtype=bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(w > 0, w * np.log(w), 0.0)
    entropy = -plogp.sum(axis=-1).mean(axis=(0, 2))
    sparsity = ((w < threshold) & visible).sum(axis=(0, 2, 3)) / (visible.sum() * w.shape[0])
    return {"entropy": entropy, "sparsity": sparsity, "max_weight": w.max(axis=-1).mean(axis=(0, 2))}


class LatentAttention(Layer):
    """DeepSeek Latent Attention: LatentAttention(embed_dim, num_heads, latent_dim_ratio). Calling it returns
    (output, weights or None, stats); weights (batch, heads, seq, seq) when need_weights.
    Self-attention only (our layer projects keys and values from the same tokens)."""

    def __init__(self, embed_dim, num_heads, latent_dim_ratio, seed=0):
        super().__init__(_mla.preset_latent_attention(embed_dim, num_heads, latent_dim_ratio), seed)

    def __call__(self, query, key=None, value=None, need_weights=False):
        for name, other in (("key", key), ("value", value)):
            if other is not None and other is not query:
                a, b = as_input(query)[0], as_input(other)[0]
                if a.shape != b.shape or not np.array_equal(a, b):
                    raise ValueError(f"LatentAttention: {name} must be the query "
                                     "(only self-attention is supported)")
        out = super().__call__(query)
        weights = self.attention_weights(query)
        return out, (weights if need_weights else None), attention_stats(weights)


class LatentKvCache:
    """RopelessMLA's growing latent cache: a LatentCache that doubles when full (rows are copied
    once per doubling)."""

    def __init__(self, config, batch, capacity=64, start_position=0):
        self.config = config
        self.cache = _mla.LatentCache(config, batch, capacity, start_position)

    @property
    def length(self):
        """Tokens cached per sequence."""
        return self.cache.length

    @property
    def batch(self):
        """Sequences in the cache."""
        return self.cache.batch

    def rows(self):
        """The filled rows (batch, length, kv_latent_dim): a view, not a copy."""
        return self.cache.rows()[:, :self.cache.length]

    def reserve(self, new_tokens):
        """Makes room for `new_tokens` more tokens (doubling the capacity when needed)."""
        c = self.cache
        if c.length + new_tokens <= c.capacity:
            return
        bigger = _mla.LatentCache(self.config, c.batch, max(2 * c.capacity, c.length + new_tokens),
                                  c.start_position)
        bigger.rows()[:, :c.length] = c.rows()[:, :c.length]
        bigger._commit(c.length)
        self.cache = bigger


class RopelessMLA(Layer):
    """RopelessMLA(d_model, n_heads, kv_latent_dim); model(x, kv_cache=past_kv,
    past_length=offset) returns (out, kv_cache)."""

    def __init__(self, d_model, n_heads, kv_latent_dim, seed=0):
        super().__init__(_mla.preset_ropeless_mla(d_model, n_heads, kv_latent_dim), seed)

    def __call__(self, x, kv_cache=None, past_length=0):
        arr, _ = as_input(x)
        batch = 1 if arr.ndim == 2 else arr.shape[0]
        if kv_cache is None:
            kv_cache = LatentKvCache(self.config, batch, max(64, _seq_len(arr)), past_length)
        elif not isinstance(kv_cache, LatentKvCache):
            raise ValueError("kv_cache: expected the LatentKvCache a previous call returned")
        elif past_length != kv_cache.length:
            raise ValueError(f"past_length: {past_length} does not match the cache's "
                             f"{kv_cache.length} tokens")
        kv_cache.reserve(_seq_len(arr))
        out = Layer.__call__(self, x, cache=kv_cache.cache)
        return out, kv_cache

    @property
    def absorbed_k(self):
        """(n_heads, d_model, kv_latent_dim): per head W_q_h^T W_uk_h, the query and key
        projections folded into one, so that x @ absorbed_k[h] is head h's query in latent
        space. The C++ layer applies the two factors in turn (the same product)."""
        c = self.config
        h, dn, dv = c.num_heads, c.qk_nope_head_dim, c.v_head_dim
        wq = self.weight("q_proj.weight").reshape(h, dn, c.hidden_size)
        wuk = self.weight("kv_b_proj.weight").reshape(h, dn + dv, c.kv_lora_rank)[:, :dn]
        return np.einsum("hnd,hnr->hdr", wq, wuk)
