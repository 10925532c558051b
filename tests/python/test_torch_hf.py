"""mla.torch.DeepseekV3Attention as a drop-in for Hugging Face's DeepseekV3Attention: the same
state_dict, forward signature and returned tuple, against a PyTorch transcription of the eager
attention of DeepSeek's modeling_deepseek.py (nn.Linear projections, its RMSNorm, rotate_half RoPE
after the interleave permutation, per-head keys and values concatenated into the cache, additive
4-D causal mask, float32 softmax). transformers is not installed: the reference lives here."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mla.torch import DeepseekV3Attention, LatentCache


def hf_config(**over):
    c = dict(hidden_size=64, num_attention_heads=4, q_lora_rank=24, kv_lora_rank=16,
             qk_nope_head_dim=12, qk_rope_head_dim=8, v_head_dim=10, rms_norm_eps=1e-6,
             rope_theta=10000.0, max_position_embeddings=128, rope_scaling=None,
             attention_bias=False, attention_dropout=0.0)
    c.update(over)
    return SimpleNamespace(**c)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(n)), eps

    def forward(self, x):
        v = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x.float() * torch.rsqrt(v + self.eps)).to(x.dtype)


def rotate_half(x):
    a, b = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-b, a), dim=-1)


def apply_rotary(q, k, cos, sin, position_ids):
    cos, sin = cos[position_ids].unsqueeze(1), sin[position_ids].unsqueeze(1)
    b, h, s, d = q.shape
    q = q.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    b, h, s, d = k.shape
    k = k.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class ReferenceAttention(nn.Module):
    """The eager DeepseekV3Attention of modeling_deepseek.py (no rope scaling), transcribed."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.q_head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim
        h = c.num_attention_heads
        if c.q_lora_rank is None:
            self.q_proj = nn.Linear(c.hidden_size, h * self.q_head_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(c.hidden_size, c.q_lora_rank, bias=False)
            self.q_a_layernorm = RMSNorm(c.q_lora_rank, c.rms_norm_eps)
            self.q_b_proj = nn.Linear(c.q_lora_rank, h * self.q_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(c.hidden_size, c.kv_lora_rank + c.qk_rope_head_dim,
                                            bias=False)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank, c.rms_norm_eps)
        self.kv_b_proj = nn.Linear(c.kv_lora_rank, h * (c.qk_nope_head_dim + c.v_head_dim),
                                   bias=False)
        self.o_proj = nn.Linear(h * c.v_head_dim, c.hidden_size, bias=False)
        self.softmax_scale = self.q_head_dim ** -0.5

    def rotary(self, seq_len, dtype):
        d = self.c.qk_rope_head_dim
        inv_freq = 1.0 / (self.c.rope_theta ** (torch.arange(0, d, 2).float() / d))
        freqs = torch.outer(torch.arange(seq_len).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(self, hidden_states, attention_mask, position_ids, past=None):
        c = self.c
        bsz, q_len, _ = hidden_states.shape
        h, dn, dr, dv = c.num_attention_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim
        if c.q_lora_rank is None:
            q = self.q_proj(hidden_states)
        else:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(hidden_states)))
        q = q.view(bsz, q_len, h, self.q_head_dim).transpose(1, 2)
        q_nope, q_pe = torch.split(q, [dn, dr], dim=-1)
        compressed_kv = self.kv_a_proj_with_mqa(hidden_states)
        compressed_kv, k_pe = torch.split(compressed_kv, [c.kv_lora_rank, dr], dim=-1)
        k_pe = k_pe.view(bsz, q_len, 1, dr).transpose(1, 2)
        kv = self.kv_b_proj(self.kv_a_layernorm(compressed_kv))
        kv = kv.view(bsz, q_len, h, dn + dv).transpose(1, 2)
        k_nope, value_states = torch.split(kv, [dn, dv], dim=-1)
        past_len = 0 if past is None else past[0].shape[-2]
        cos, sin = self.rotary(q_len + past_len, value_states.dtype)
        q_pe, k_pe = apply_rotary(q_pe, k_pe, cos, sin, position_ids)
        query_states = torch.cat([q_nope, q_pe], dim=-1)
        key_states = torch.cat([k_nope, k_pe.expand(bsz, h, q_len, dr)], dim=-1)
        if past is not None:
            key_states = torch.cat([past[0], key_states], dim=-2)
            value_states = torch.cat([past[1], value_states], dim=-2)
        attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) * self.softmax_scale
        attn_weights = attn_weights + attention_mask
        attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32)
        attn_weights = attn_weights.to(query_states.dtype)
        out = torch.matmul(attn_weights, value_states).transpose(1, 2).reshape(bsz, q_len, h * dv)
        return self.o_proj(out), attn_weights, (key_states, value_states)


def causal_mask(bsz, q_len, past_len, dtype=torch.float32):
    """transformers' 4-D additive causal mask: 0 where visible, finfo.min above the diagonal."""
    kv = past_len + q_len
    m = torch.full((q_len, kv), torch.finfo(dtype).min).triu(past_len + 1)
    return m[None, None].expand(bsz, 1, q_len, kv)


def pair(**over):
    c = hf_config(**over)
    ours = DeepseekV3Attention(c, layer_idx=0, seed=3)
    ref = ReferenceAttention(c)
    ref.load_state_dict(ours.state_dict())  # the same keys: a checkpoint's attention loads
    return c, ours, ref


def test_prefill_then_cached_decode_equal_the_reference():
    c, ours, ref = pair()
    x = torch.randn(2, 11, c.hidden_size)
    n = 7
    pos = torch.arange(n).expand(2, n)
    with torch.no_grad():
        y, w, cache = ours(x[:, :n], attention_mask=causal_mask(2, n, 0), position_ids=pos,
                           past_key_value=None, output_attentions=True, use_cache=True)
        y_ref, w_ref, past = ref(x[:, :n], causal_mask(2, n, 0), pos)
        assert isinstance(cache, LatentCache) and cache.get_seq_length(0) == n
        assert torch.allclose(y, y_ref, atol=2e-5)
        assert torch.allclose(w, w_ref, atol=1e-6)
        # Latent cache: R + Dr floats per token, instead of H (Dqk + Dv).
        assert cache.bytes_per_token == 4 * (c.kv_lora_rank + c.qk_rope_head_dim)
        for t in range(n, 11):
            pos = torch.full((2, 1), t)
            y, w, cache2 = ours(x[:, t:t + 1], attention_mask=causal_mask(2, 1, t),
                                position_ids=pos, past_key_value=cache, use_cache=True)
            y_ref, _, past = ref(x[:, t:t + 1], causal_mask(2, 1, t), pos, past)
            assert cache2 is cache and w is None
            assert torch.allclose(y, y_ref, atol=2e-5), t
        assert cache.get_seq_length(0) == 11


def test_training_gradients_equal_the_reference():
    c, ours, ref = pair(q_lora_rank=None)
    assert "q_proj.weight" in ours.state_dict()
    x = torch.randn(2, 6, c.hidden_size, requires_grad=True)
    y, w, cache = ours(x, position_ids=torch.arange(6)[None])
    assert w is None and cache is None
    g = torch.randn_like(y)
    (y * g).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    y_ref = ref(x2, causal_mask(2, 6, 0), torch.arange(6)[None])[0]
    (y_ref * g).sum().backward()
    assert torch.allclose(y, y_ref, atol=2e-5)
    assert torch.allclose(x.grad, x2.grad, atol=1e-4)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        scale = ref_params[name].grad.abs().max()
        assert float((p.grad - ref_params[name].grad).abs().max() / scale) < 1e-4, name


def test_what_the_kernels_do_not_serve_is_refused():
    c, ours, _ = pair()
    x = torch.randn(2, 4, c.hidden_size)
    padded = causal_mask(2, 4, 0).clone()
    padded[0, :, :, 0] = torch.finfo(torch.float32).min
    with pytest.raises(ValueError, match="attention_mask: only the causal mask is supported"):
        ours(x, attention_mask=padded)
    with pytest.raises(ValueError, match=r"position_ids: must be past_length \+ arange\(q_len\)"):
        ours(x, position_ids=torch.arange(1, 5)[None])
    with pytest.raises(ValueError, match="attention_mask: a 2-D mask must be all ones"):
        ours(x, attention_mask=torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]]))
    with pytest.raises(TypeError, match="past_key_value: expected an mla.torch.LatentCache"):
        ours(x, past_key_value=[])
    with pytest.raises(ValueError, match="config: attention_bias=True is not supported"):
        DeepseekV3Attention(hf_config(attention_bias=True))
    _, _, cache = ours(x, use_cache=True)
    with pytest.raises(ValueError, match="output_attentions: only for a prefill"):
        ours(x[:, :1], past_key_value=cache, output_attentions=True)
    with pytest.raises(TypeError, match=r"unexpected arguments \['head_mask'\]"):
        ours(x, head_mask=None)
    with torch.no_grad():  # newer transformers' keyword for the cache
        _, _, c2 = ours(x, use_cache=True)
        ours(x[:, :1], past_key_values=c2, use_cache=True)
        assert c2.get_seq_length(0) == 5
    # 2-D mask of ones and a boolean causal mask are accepted.
    ones = torch.ones(2, 4)
    keep = torch.ones(4, 4, dtype=torch.bool).tril()[None, None].expand(2, 1, 4, 4)
    with torch.no_grad():
        assert torch.allclose(ours(x, attention_mask=ones)[0], ours(x, attention_mask=keep)[0])
    assert math.isclose(ours.softmax_scale, (c.qk_nope_head_dim + c.qk_rope_head_dim) ** -0.5,
                        rel_tol=1e-6)


def test_yarn_rope_scaling_of_the_config_is_used():
    """DeepSeek-V3's YaRN config: the drop-in equals the float64 reference of the spec
    (tests/reference/mla_reference.py), which implements DeepSeek's YaRN ramp and mscale."""
    import json

    import mla_reference as ref

    yarn = {"type": "yarn", "factor": 40.0, "original_max_position_embeddings": 32,
            "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}
    c = hf_config(max_position_embeddings=1280, rope_scaling=yarn)
    ours = DeepseekV3Attention(c, layer_idx=0, seed=5)
    plain = DeepseekV3Attention(hf_config(), layer_idx=0, seed=5)
    assert ours.softmax_scale > plain.softmax_scale  # mscale_all_dim scales the softmax
    r = ref.Layer(ref.Config.from_json(json.loads(ours.config.to_json())), {})
    r.w = {n: p.detach().double() for n, p in ours.named_parameters()}
    x = torch.randn(1, 40, c.hidden_size)
    with torch.no_grad():
        y = ours(x, position_ids=torch.arange(40)[None])[0]
        assert not torch.allclose(y, plain(x)[0], atol=1e-3)
    assert torch.allclose(y.double(), r.naive(x.double()), atol=1e-4)
