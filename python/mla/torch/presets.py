"""The seed systems' constructors (docs/presets.md) as nn.Modules over MultiHeadLatentAttention.

Each builds the config the C++ library derives from the seed's arguments (the same mapping as
mla.presets, include/mla/presets.h) and behaves as the seed's README shows, with torch tensors
in and out, gradients through the C++ backward, and dropout in train() mode only.
"""

import torch

from .. import _mla
from ..presets import LatentKvCache, MLAConfig, attention_stats
from .modules import MultiHeadLatentAttention, check_input


def _check_length(what, used, limit, name):
    if used > limit:
        raise ValueError(f"{what}: {used} tokens exceed {name} {limit}")


class MLA(MultiHeadLatentAttention):
    """Seed 001: MLA(MLAConfig(d_model, num_heads, kv_compressed_dim, q_compressed_dim,
    rope_dim, seq_len, use_bias=False)); attention(x) for x (batch, seq <= seq_len, d_model).
    An mla.Config is accepted too (then no length limit but max_position_embeddings)."""

    def __init__(self, config, seed=0, train_form="naive"):
        if isinstance(config, MLAConfig):
            self_limit, cfg = config.seq_len, config.config
        elif isinstance(config, _mla.Config):
            self_limit, cfg = config.max_position_embeddings, config
        else:
            raise TypeError(f"MLA: expected an mla.MLAConfig, got {type(config).__name__}")
        super().__init__(cfg, seed, train_form)
        self.mla_config = config
        self.seq_len = self_limit

    def forward(self, x, cache=None):
        check_input(x, self.config.hidden_size)
        used = (cache.length if cache is not None else 0) + x.shape[-2]
        _check_length("MLA", used, self.seq_len, "seq_len")
        return super().forward(x, cache)


class multiheadlatentattention(MultiHeadLatentAttention):
    """Seed 000 (MHLA): multiheadlatentattention(d_in, d_out, dl, num_head, dropout_rate,
    contextlenght); attn(x) (batch, seq <= contextlenght, d_in) -> (batch, seq, d_out).
    dropout_rate drops attention probabilities in train() mode."""

    def __init__(self, d_in, d_out, dl, num_head, dropout_rate, contextlenght, seed=0):
        super().__init__(_mla.preset_mhla(d_in, d_out, dl, num_head, dropout_rate, contextlenght),
                         seed)
        self.contextlenght = contextlenght

    def forward(self, x, cache=None):
        check_input(x, self.config.hidden_size)
        used = (cache.length if cache is not None else 0) + x.shape[-2]
        _check_length("MHLA", used, self.contextlenght, "contextlenght")
        return super().forward(x, cache)


MHLA = multiheadlatentattention


class LatentAttention(MultiHeadLatentAttention):
    """Seed 003: LatentAttention(embed_dim, num_heads, latent_dim_ratio);
    attn(query, key, value, need_weights=False) returns (output, weights or None, stats), weights
    (batch, heads, seq, seq) and stats (per head entropy, sparsity, max_weight) without gradient.
    Self-attention only: key and value must be the query."""

    def __init__(self, embed_dim, num_heads, latent_dim_ratio, seed=0):
        super().__init__(_mla.preset_latent_attention(embed_dim, num_heads, latent_dim_ratio), seed)

    def forward(self, query, key=None, value=None, need_weights=False):
        check_input(query, self.config.hidden_size, "query")
        for name, other in (("key", key), ("value", value)):
            if other is not None and other is not query:
                if (not isinstance(other, torch.Tensor) or other.shape != query.shape
                        or not torch.equal(other, query)):
                    raise ValueError(f"LatentAttention: {name} must be the query "
                                     "(only self-attention is supported)")
        out = super().forward(query)
        weights = self.attention_weights(query)
        stats = {k: torch.from_numpy(v) for k, v in attention_stats(weights.numpy()).items()}
        return out, (weights if need_weights else None), stats


class RopelessMLA(MultiHeadLatentAttention):
    """Seed 004: RopelessMLA(d_model, n_heads, kv_latent_dim);
    model(x, kv_cache=None, past_length=0) returns (out, kv_cache). Without a cache the output
    is differentiable and a new latent cache is filled too (an inference pass; use_cache=False
    skips it and returns None); with a cache the call decodes (inference)."""

    def __init__(self, d_model, n_heads, kv_latent_dim, seed=0):
        super().__init__(_mla.preset_ropeless_mla(d_model, n_heads, kv_latent_dim), seed)

    def forward(self, x, kv_cache=None, past_length=0, use_cache=True):
        check_input(x, self.config.hidden_size)
        batch = 1 if x.dim() == 2 else x.shape[0]
        seq = x.shape[-2]
        if kv_cache is None:
            out = super().forward(x)
            if not use_cache:
                return out, None
            kv_cache = LatentKvCache(self.config, batch, max(64, seq), past_length)
            kv_cache.reserve(seq)
            with torch.no_grad():
                super().forward(x, kv_cache.cache)
            return out, kv_cache
        if not isinstance(kv_cache, LatentKvCache):
            raise TypeError("kv_cache: expected the LatentKvCache a previous call returned")
        if past_length != kv_cache.length:
            raise ValueError(f"past_length: {past_length} does not match the cache's "
                             f"{kv_cache.length} tokens")
        kv_cache.reserve(seq)
        return super().forward(x, kv_cache.cache), kv_cache

    @property
    def absorbed_k(self):
        """(n_heads, d_model, kv_latent_dim): per head W_q_h^T W_uk_h (differentiable)."""
        c = self.config
        h, dn, dv = c.num_heads, c.qk_nope_head_dim, c.v_head_dim
        wq = self.q_proj.weight.reshape(h, dn, c.hidden_size)
        wuk = self.kv_b_proj.weight.reshape(h, dn + dv, c.kv_lora_rank)[:, :dn]
        return torch.einsum("hnd,hnr->hdr", wq, wuk)
