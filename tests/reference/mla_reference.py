"""An independent PyTorch implementation of one MLA attention layer, written from the spec
(docs/math.md, from DeepSeek-V2/V3 and their official inference code), not from our C++.

It computes in float64 by default. Three forms are provided and checked against each other:
the naive form (per-head keys and values, full causal mask), the absorbed form (attention over
the latent cache), and step-by-step decoding.
"""
import math
from dataclasses import dataclass, field

import torch


@dataclass
class Config:
    hidden_size: int
    num_attention_heads: int
    q_lora_rank: int  # 0 = no query compression
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 4096
    rope_scaling: dict = field(default_factory=dict)
    # Options beyond DeepSeek (the seed systems): the latents' norm ("rmsnorm", "layernorm",
    # "none"), a bias on every projection, o_proj's output width (0: hidden_size).
    latent_norm: str = "rmsnorm"
    projection_bias: bool = False
    output_size: int = 0

    @staticmethod
    def from_json(d):
        return Config(
            hidden_size=d["hidden_size"],
            num_attention_heads=d["num_attention_heads"],
            q_lora_rank=d.get("q_lora_rank") or 0,
            kv_lora_rank=d["kv_lora_rank"],
            qk_nope_head_dim=d["qk_nope_head_dim"],
            qk_rope_head_dim=d["qk_rope_head_dim"],
            v_head_dim=d["v_head_dim"],
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            rope_theta=d.get("rope_theta", 10000.0),
            max_position_embeddings=d.get("max_position_embeddings", 4096),
            rope_scaling=d.get("rope_scaling") or {},
            latent_norm=d.get("latent_norm") or "rmsnorm",
            projection_bias=bool(d.get("projection_bias", False)),
            output_size=d.get("output_size") or 0,
        )

    def yarn(self):
        s = self.rope_scaling
        kind = s.get("type", s.get("rope_type"))
        return (kind == "yarn" and s.get("factor", 1.0) > 1.0
                and self.max_position_embeddings > s.get("original_max_position_embeddings", 4096))

    def softmax_scale(self):
        scale = (self.qk_nope_head_dim + self.qk_rope_head_dim) ** -0.5
        if self.yarn():
            m = 0.1 * self.rope_scaling.get("mscale_all_dim", 0.0) * math.log(self.rope_scaling["factor"]) + 1.0
            scale *= m * m
        return scale


def yarn_frequencies(cfg):
    """f_k, k < d_r/2, with DeepSeek's YaRN ramp (float32 like the official code)."""
    d = cfg.qk_rope_head_dim
    freqs = [cfg.rope_theta ** (-2.0 * k / d) for k in range(d // 2)]
    if cfg.yarn():
        s = cfg.rope_scaling
        orig = s.get("original_max_position_embeddings", 4096)

        def corr(n):
            return d * math.log(orig / (n * 2 * math.pi)) / (2 * math.log(cfg.rope_theta))

        low = max(math.floor(corr(s.get("beta_fast", 32))), 0)
        high = min(math.ceil(corr(s.get("beta_slow", 1))), d - 1)
        if low == high:
            high += 0.001
        out = []
        for k, f in enumerate(freqs):
            ramp = min(max((k - low) / (high - low), 0.0), 1.0)
            out.append(f / s["factor"] * ramp + f * (1 - ramp))
        freqs = out
    return torch.tensor(freqs, dtype=torch.float32)


def rope_amplitude(cfg):
    if not cfg.yarn():
        return 1.0
    s = cfg.rope_scaling

    def mscale(scale, m):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    return mscale(s["factor"], s.get("mscale", 1.0)) / mscale(s["factor"], s.get("mscale_all_dim", 0.0))


def rope(x, positions, cfg):
    """Interleaved RoPE on the last dim of x [..., T, d_r]; positions [T]."""
    if cfg.qk_rope_head_dim == 0:
        return x
    freqs = yarn_frequencies(cfg)
    angles = torch.outer(positions.to(torch.float32), freqs)  # float32 angles, as DeepSeek does
    amp = rope_amplitude(cfg)
    cos = (torch.cos(angles.double()) * amp).to(x.dtype)
    sin = (torch.sin(angles.double()) * amp).to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased, as torch.nn.LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * w + b


class Layer:
    def __init__(self, cfg, weights, layer=0, dtype=torch.float64):
        p = f"model.layers.{layer}.self_attn."
        self.cfg = cfg
        self.w = {k[len(p):]: torch.as_tensor(v, dtype=dtype) for k, v in weights.items() if k.startswith(p)}
        self.dtype = dtype

    def _linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        return y + self.w[name + ".bias"] if self.cfg.projection_bias else y

    def _norm(self, x, name):
        kind, eps = self.cfg.latent_norm, self.cfg.rms_norm_eps
        if kind == "none":
            return x
        if kind == "layernorm":
            return layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], eps)
        return rms_norm(x, self.w[name + ".weight"], eps)

    def _project(self, x, start):
        """x [B, S, d] -> q_nope [B,S,H,Dn], q_pe [B,S,H,Dr], c_kv [B,S,R], k_pe [B,S,Dr]."""
        c, w = self.cfg, self.w
        B, S, _ = x.shape
        H, Dn, Dr, R = c.num_attention_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.kv_lora_rank
        if c.q_lora_rank:
            q = self._linear(self._norm(self._linear(x, "q_a_proj"), "q_a_layernorm"), "q_b_proj")
        else:
            q = self._linear(x, "q_proj")
        q = q.view(B, S, H, Dn + Dr)
        pos = torch.arange(start, start + S)
        q_nope = q[..., :Dn]
        q_pe = rope(q[..., Dn:].transpose(1, 2), pos, c).transpose(1, 2)
        a = self._linear(x, "kv_a_proj_with_mqa")
        c_kv = self._norm(a[..., :R], "kv_a_layernorm")
        k_pe = rope(a[..., R:], pos, c)
        return q_nope, q_pe, c_kv, k_pe

    def naive(self, x, start=0):
        c, w = self.cfg, self.w
        x = torch.as_tensor(x, dtype=self.dtype)
        B, S, _ = x.shape
        H, Dn, Dr, Dv = c.num_attention_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim
        q_nope, q_pe, c_kv, k_pe = self._project(x, start)
        kv = self._linear(c_kv, "kv_b_proj").view(B, S, H, Dn + Dv)
        k = torch.cat([kv[..., :Dn], k_pe[:, :, None, :].expand(B, S, H, Dr)], dim=-1)
        v = kv[..., Dn:]
        q = torch.cat([q_nope, q_pe], dim=-1)
        scores = torch.einsum("bshd,bthd->bhst", q, k) * c.softmax_scale()
        mask = torch.triu(torch.ones(S, S, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(mask, float("-inf"))
        o = torch.einsum("bhst,bthd->bshd", scores.softmax(-1), v).reshape(B, S, H * Dv)
        return self._linear(o, "o_proj")

    def attention_weights(self, x, start=0):
        """The naive form's causal softmax probabilities [B, H, S, S]."""
        c = self.cfg
        x = torch.as_tensor(x, dtype=self.dtype)
        B, S, _ = x.shape
        H, Dn, Dr, Dv = c.num_attention_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim
        q_nope, q_pe, c_kv, k_pe = self._project(x, start)
        kv = self._linear(c_kv, "kv_b_proj").view(B, S, H, Dn + Dv)
        k = torch.cat([kv[..., :Dn], k_pe[:, :, None, :].expand(B, S, H, Dr)], dim=-1)
        scores = torch.einsum("bshd,bthd->bhst", torch.cat([q_nope, q_pe], dim=-1), k) * c.softmax_scale()
        mask = torch.triu(torch.ones(S, S, dtype=torch.bool), diagonal=1)
        return scores.masked_fill(mask, float("-inf")).softmax(-1)

    def absorbed(self, x, start=0, cache=None):
        """cache: optional (c_kv [B,L,R], k_pe [B,L,Dr]) of earlier tokens; returns (y, cache)."""
        c, w = self.cfg, self.w
        if c.projection_bias:
            raise NotImplementedError("the reference's absorbed form has no biases; use naive()")
        x = torch.as_tensor(x, dtype=self.dtype)
        B, S, _ = x.shape
        H, Dn, Dv, R = c.num_attention_heads, c.qk_nope_head_dim, c.v_head_dim, c.kv_lora_rank
        q_nope, q_pe, c_kv, k_pe = self._project(x, start)
        if cache is not None:
            c_kv = torch.cat([cache[0], c_kv], dim=1)
            k_pe = torch.cat([cache[1], k_pe], dim=1)
        L = c_kv.shape[1]
        wkv_b = w["kv_b_proj.weight"].view(H, Dn + Dv, R)
        q_abs = torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :Dn])
        scores = (torch.einsum("bshc,btc->bhst", q_abs, c_kv) + torch.einsum("bshr,btr->bhst", q_pe, k_pe)) * c.softmax_scale()
        mask = torch.arange(L)[None, :] > (torch.arange(S)[:, None] + L - S)
        scores = scores.masked_fill(mask, float("-inf"))
        o_lat = torch.einsum("bhst,btc->bshc", scores.softmax(-1), c_kv)
        o = torch.einsum("bshc,hdc->bshd", o_lat, wkv_b[:, Dn:]).reshape(B, S, H * Dv)
        return o @ w["o_proj.weight"].T, (c_kv, k_pe)

    def decode_steps(self, x, prefill):
        """First `prefill` tokens at once, then one at a time through the latent cache."""
        x = torch.as_tensor(x, dtype=self.dtype)
        outs, cache, t = [], None, 0
        while t < x.shape[1]:
            n = prefill if (t == 0 and prefill > 0) else 1
            y, cache = self.absorbed(x[:, t : t + n], start=t, cache=cache)
            outs.append(y)
            t += n
        return torch.cat(outs, dim=1)
