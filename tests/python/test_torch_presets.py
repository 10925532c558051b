"""The seed systems' modules in mla.torch (docs/presets.md) as nn.Modules: their READMEs' calls
and training loops with torch tensors, train/eval behaviour, and the same numbers as the NumPy
classes of mla (same seed, same weights)."""
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import mla
import mla.torch as mt


class RMSNorm(nn.Module):
    """nn.RMSNorm of newer torch (the seed README's block uses it; torch 1.13 lacks it)."""

    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(n)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


@dataclass
class Config:
    d_model: int
    num_heads: int
    kv_compressed_dim: int
    q_compressed_dim: int
    rope_dim: int
    seq_len: int
    vocab_size: int
    ff_hidden: int
    dropout: float = 0.0


class TransformerBlock(nn.Module):
    """Seed 001 README's block, as written there but for `from mla.torch import MLA, MLAConfig`."""

    def __init__(self, config):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(config.d_model), RMSNorm(config.d_model)
        self.res_dropout = nn.Dropout(p=config.dropout)
        self.attn = mt.MLA(mt.MLAConfig(d_model=config.d_model, num_heads=config.num_heads,
                                        kv_compressed_dim=config.kv_compressed_dim,
                                        q_compressed_dim=config.q_compressed_dim,
                                        rope_dim=config.rope_dim, seq_len=config.seq_len))
        self.ff = nn.Sequential(nn.Linear(config.d_model, config.ff_hidden), nn.GELU(),
                                nn.Dropout(p=config.dropout),
                                nn.Linear(config.ff_hidden, config.d_model))

    def forward(self, x):
        x = x + self.res_dropout(self.attn(self.norm1(x)))
        return x + self.res_dropout(self.ff(self.norm2(x)))


def test_001_readme_usage_and_block_training():
    config = mt.MLAConfig(d_model=64, num_heads=4, kv_compressed_dim=16, q_compressed_dim=32,
                          rope_dim=8, seq_len=32)
    attention = mt.MLA(config)
    x = torch.randn(2, 32, 64)
    output = attention(x)
    assert output.shape == (2, 32, 64)
    np.testing.assert_allclose(output.detach().numpy(), mla.MLA(config)(x.numpy()), atol=1e-5)
    with pytest.raises(ValueError, match="MLA: 33 tokens exceed seq_len 32"):
        attention(torch.randn(1, 33, 64))

    torch.manual_seed(0)
    cfg = Config(64, 4, 16, 32, 8, 32, vocab_size=50, ff_hidden=128, dropout=0.1)
    model = nn.Sequential(nn.Embedding(cfg.vocab_size, cfg.d_model), TransformerBlock(cfg),
                          nn.Linear(cfg.d_model, cfg.vocab_size))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    tokens = torch.randint(0, cfg.vocab_size, (4, 17))
    losses = []
    model.train()
    for _ in range(8):
        logits = model(tokens[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size),
                                           tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3
    assert model[1].attn.kv_b_proj.weight.grad is not None


def test_000_mhla_dropout_in_train_mode_and_context_length():
    attn = mt.multiheadlatentattention(d_in=32, d_out=24, dl=16, num_head=4, dropout_rate=0.3,
                                       contextlenght=16)
    x = torch.randn(2, 16, 32)
    assert attn(x).shape == (2, 16, 24)
    assert attn.training and not torch.equal(attn(x), attn(x))
    attn.eval()
    assert torch.equal(attn(x), attn(x))
    np.testing.assert_allclose(attn(x).detach().numpy(),
                               mla.MHLA(32, 24, 16, 4, 0.3, 16)(x.numpy()), atol=1e-5)
    with pytest.raises(ValueError, match="MHLA: 17 tokens exceed contextlenght 16"):
        attn(torch.randn(1, 17, 32))


def test_003_latent_attention_returns_output_weights_stats():
    attn = mt.LatentAttention(embed_dim=32, num_heads=4, latent_dim_ratio=0.25)
    inputs = torch.randn(2, 10, 32, requires_grad=True)
    out, weights, stats = attn(inputs, inputs, inputs, need_weights=True)
    assert out.shape == (2, 10, 32) and weights.shape == (2, 4, 10, 10)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 10), atol=1e-5)
    assert stats["entropy"].shape == (4,)
    out.sum().backward()
    assert inputs.grad is not None and attn.q_proj.bias.grad is not None
    _, none, _ = attn(inputs)
    assert none is None
    with pytest.raises(ValueError, match="LatentAttention: key must be the query"):
        attn(inputs, torch.zeros_like(inputs), inputs)


def test_004_ropeless_cache_and_training():
    model = mt.RopelessMLA(d_model=32, n_heads=4, kv_latent_dim=8)
    x = torch.randn(1, 12, 32)
    with torch.no_grad():
        out, kv_cache = model(x[:, :8])
        for t in range(8, 12):
            y, kv_cache = model(x[:, t:t + 1], kv_cache=kv_cache, past_length=t)
        full, _ = model(x)
    assert kv_cache.length == 12 and kv_cache.rows().shape == (1, 12, 8)
    assert torch.allclose(full[:, -1], y[:, 0], atol=1e-5)
    assert model.absorbed_k.shape == (4, 32, 8)
    out, cache = model(x, use_cache=False)
    assert cache is None
    out.square().mean().backward()
    assert model.kv_b_proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="past_length: 3 does not match the cache's 12 tokens"):
        model(x[:, :1], kv_cache=kv_cache, past_length=3)
