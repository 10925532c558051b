"""The whole DeepSeek model in PyTorch, transcribed from the math of DeepSeek's official
inference code (deepseek-ai/DeepSeek-V3, inference/model.py: precompute_freqs_cis,
apply_rotary_emb, MLA in its naive form, MLP, Gate, MoE, Block, Transformer), written for these
tests and independent of our C++.

Differences from the official code, all on purpose: it reads Hugging Face tensor names and
config.json fields (the official code reads its converted layout); it returns the logits of every
position, not only the last; the router has a correction bias exactly when the checkpoint holds
one (the official code keys it on dim == 7168); norm_topk_prob comes from the config (the official
code renormalises when scoring is sigmoid: the released configs agree); greedy ignores groups
(Hugging Face's V2 code); moe_layer_freq is honoured. It computes in float64 by default.
"""
import math

import numpy as np
import torch


class Args:
    def __init__(self, cfg):
        self.cfg = cfg
        g = cfg.get
        self.dim = cfg["hidden_size"]
        self.n_layers = cfg["num_hidden_layers"]
        self.vocab = cfg["vocab_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.q_lora_rank = g("q_lora_rank") or 0
        self.kv_lora_rank = cfg["kv_lora_rank"]
        self.nope = cfg["qk_nope_head_dim"]
        self.rope = cfg["qk_rope_head_dim"]
        self.v_dim = cfg["v_head_dim"]
        self.eps = g("rms_norm_eps", 1e-6)
        self.theta = g("rope_theta", 10000.0)
        self.max_seq_len = g("max_position_embeddings", 4096)
        rs = g("rope_scaling") or {}
        self.yarn = rs.get("type", rs.get("rope_type")) == "yarn" and rs.get("factor", 1.0) > 1.0
        self.factor = rs.get("factor", 1.0)
        self.original_seq_len = rs.get("original_max_position_embeddings", 4096)
        self.beta_fast = rs.get("beta_fast", 32.0)
        self.beta_slow = rs.get("beta_slow", 1.0)
        self.mscale = rs.get("mscale_all_dim", 0.0)
        v2 = cfg["architectures"][0] == "DeepseekV2ForCausalLM"
        self.n_experts = g("n_routed_experts") or 0
        self.n_dense = g("first_k_dense_replace", 0)
        self.moe_freq = g("moe_layer_freq", 1)
        self.n_shared = g("n_shared_experts") or 0
        self.topk = g("num_experts_per_tok") or 0
        self.score_func = g("scoring_func", "softmax" if v2 else "sigmoid")
        self.topk_method = g("topk_method", "greedy" if v2 else "noaux_tc")
        self.n_groups = g("n_group") or 1
        self.topk_groups = g("topk_group") or 1
        self.norm_topk = g("norm_topk_prob", False)
        self.route_scale = g("routed_scaling_factor", 1.0)
        self.tie = g("tie_word_embeddings", False)


def freqs_cis(a, seqlen, dtype):
    """precompute_freqs_cis: per position, e^(i t f_k) for the pairs k of the rotary slice."""
    dim = a.rope
    freqs = 1.0 / (a.theta ** (torch.arange(0, dim, 2, dtype=dtype) / dim))
    if a.yarn and a.max_seq_len > a.original_seq_len:
        def corr(rot):
            return dim * math.log(a.original_seq_len / (rot * 2 * math.pi)) / (2 * math.log(a.theta))
        low = max(math.floor(corr(a.beta_fast)), 0)
        high = min(math.ceil(corr(a.beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=dtype) - low) / (high - low), 0, 1)
        freqs = freqs / a.factor * ramp + freqs * (1 - ramp)
    angles = torch.outer(torch.arange(seqlen, dtype=dtype), freqs)
    return torch.cos(angles), torch.sin(angles)


def rotary(x, cos, sin):
    """apply_rotary_emb on consecutive pairs (x[2k], x[2k+1]); x is (b, s, h, dim)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def rms_norm(x, w, eps):
    y = x.float() if x.dtype == torch.bfloat16 else x
    return (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def e4m3_round(y):
    """Nearest float8 e4m3fn value (ties to even) of |y| <= 448: 3 mantissa bits, normal from
    2^-6, subnormal steps of 2^-9."""
    a = np.abs(y)
    exponent = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    step = np.exp2(np.maximum(exponent, -6.0) - 3.0)
    return np.sign(y) * np.minimum(np.round(a / step) * step, 448.0)


def quantized_cache_rows(kind):
    """The latent cache rows as include/mla/quantized_row.h stores them (DeepSeek-V3.2's layout),
    read back: c_kv in groups of 128 with scale max|x| / 448 (e4m3 codes) or / 127 (int8 codes),
    k_pe rounded to bf16. For Model(cache_rows=...)."""
    limit = 448.0 if kind == "fp8" else 127.0

    def rows(c, k_pe):
        x = c.numpy()
        out = np.empty_like(x)
        for g0 in range(0, x.shape[-1], 128):
            g = x[..., g0 : g0 + 128]
            scale = np.max(np.abs(g), axis=-1, keepdims=True) / limit
            y = np.divide(g, scale, out=np.zeros_like(g), where=scale > 0)
            codes = e4m3_round(y) if kind == "fp8" else np.clip(np.round(y), -127, 127)
            out[..., g0 : g0 + 128] = codes * scale
        return (torch.as_tensor(out, dtype=c.dtype),
                k_pe.to(torch.float32).to(torch.bfloat16).to(k_pe.dtype))
    return rows


class Model:
    def __init__(self, cfg, tensors, dtype=torch.float64, cache_rows=None):
        self.a = Args(cfg)
        self.t = {k: torch.as_tensor(v, dtype=dtype) for k, v in tensors.items()}
        self.dtype = dtype
        self.cache_rows = cache_rows  # f(c_kv, k_pe) -> what the cache keeps of them
        self.norm_dtype = dtype  # the official code's RMSNorm and softmax run in float32 for bf16

    def w(self, name):
        return self.t[name]

    def mla(self, l, x, cos, sin):
        a, p = self.a, f"model.layers.{l}.self_attn."
        b, s, _ = x.shape
        if a.q_lora_rank:
            q = rms_norm(x @ self.w(p + "q_a_proj.weight").T, self.w(p + "q_a_layernorm.weight"), a.eps)
            q = q @ self.w(p + "q_b_proj.weight").T
        else:
            q = x @ self.w(p + "q_proj.weight").T
        q = q.view(b, s, a.n_heads, a.nope + a.rope)
        q_nope, q_pe = q[..., : a.nope], rotary(q[..., a.nope :], cos, sin)
        kv = x @ self.w(p + "kv_a_proj_with_mqa.weight").T
        c, k_pe = kv[..., : a.kv_lora_rank], rotary(kv[..., None, a.kv_lora_rank :], cos, sin)
        kv = rms_norm(c, self.w(p + "kv_a_layernorm.weight"), a.eps) @ self.w(p + "kv_b_proj.weight").T
        kv = kv.view(b, s, a.n_heads, a.nope + a.v_dim)
        k_nope, v = kv[..., : a.nope], kv[..., a.nope :]
        q = torch.cat([q_nope, q_pe], dim=-1)
        k = torch.cat([k_nope, k_pe.expand(-1, -1, a.n_heads, -1)], dim=-1)
        scale = (a.nope + a.rope) ** -0.5
        if a.yarn and a.max_seq_len > a.original_seq_len:
            m = 0.1 * a.mscale * math.log(a.factor) + 1.0
            scale = scale * m * m
        scores = torch.einsum("bshd,bthd->bsht", q, k) * scale
        mask = torch.full((s, s), float("-inf"), dtype=self.dtype).triu_(1)
        scores = (scores + mask[None, :, None, :]).softmax(dim=-1)
        o = torch.einsum("bsht,bthd->bshd", scores, v)
        return o.flatten(2) @ self.w(p + "o_proj.weight").T

    def mla_cached(self, l, x, start, cache):
        """The official "absorb" path: caches the normed latent and the rotary key per token,
        folds W_UK into the queries and W_UV after the sum. x holds positions start.."""
        a, p = self.a, f"model.layers.{l}.self_attn."
        b, s, _ = x.shape
        cos, sin = cache["cos"][start : start + s], cache["sin"][start : start + s]
        if a.q_lora_rank:
            q = rms_norm(x @ self.w(p + "q_a_proj.weight").T, self.w(p + "q_a_layernorm.weight"), a.eps)
            q = q @ self.w(p + "q_b_proj.weight").T
        else:
            q = x @ self.w(p + "q_proj.weight").T
        q = q.view(b, s, a.n_heads, a.nope + a.rope)
        q_nope, q_pe = q[..., : a.nope], rotary(q[..., a.nope :], cos, sin)
        kv = x @ self.w(p + "kv_a_proj_with_mqa.weight").T
        c, k_pe = kv[..., : a.kv_lora_rank], rotary(kv[..., None, a.kv_lora_rank :], cos, sin)
        wkv_b = self.w(p + "kv_b_proj.weight").view(a.n_heads, a.nope + a.v_dim, a.kv_lora_rank)
        q_nope = torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, : a.nope])
        kv_cache, pe_cache = cache[l]
        end = start + s
        c, k_pe = rms_norm(c, self.w(p + "kv_a_layernorm.weight"), a.eps), k_pe.squeeze(2)
        if self.cache_rows:
            c, k_pe = self.cache_rows(c, k_pe)
        kv_cache[:b, start:end] = c
        pe_cache[:b, start:end] = k_pe
        scale = (a.nope + a.rope) ** -0.5
        if a.yarn and a.max_seq_len > a.original_seq_len:
            m = 0.1 * a.mscale * math.log(a.factor) + 1.0
            scale = scale * m * m
        scores = (torch.einsum("bshc,btc->bsht", q_nope, kv_cache[:b, :end]) +
                  torch.einsum("bshr,btr->bsht", q_pe, pe_cache[:b, :end])) * scale
        if s > 1:
            mask = torch.full((s, end), float("-inf"), dtype=scores.dtype).triu_(start + 1)
            scores = scores + mask[None, :, None, :]
        scores = scores.softmax(dim=-1, dtype=torch.float32 if x.dtype == torch.bfloat16 else x.dtype)
        scores = scores.to(x.dtype)
        o = torch.einsum("bsht,btc->bshc", scores, kv_cache[:b, :end])
        o = torch.einsum("bshc,hdc->bshd", o, wkv_b[:, -a.v_dim :])
        return o.flatten(2) @ self.w(p + "o_proj.weight").T

    def new_cache(self, batch, max_len):
        a = self.a
        cos, sin = freqs_cis(a, max_len, torch.float64 if self.dtype == torch.float64 else torch.float32)
        cache = {"cos": cos.to(self.dtype), "sin": sin.to(self.dtype)}
        for l in range(a.n_layers):
            cache[l] = (torch.zeros(batch, max_len, a.kv_lora_rank, dtype=self.dtype),
                        torch.zeros(batch, max_len, a.rope, dtype=self.dtype))
        return cache

    def step(self, tokens, start, cache):
        """Official Transformer.forward(tokens, start_pos) over the cache, logits of every new
        position: tokens (b, s) at positions start .. start + s - 1."""
        a = self.a
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        h = self.w("model.embed_tokens.weight")[tokens]
        for l in range(a.n_layers):
            p = f"model.layers.{l}."
            h = h + self.mla_cached(l, rms_norm(h, self.w(p + "input_layernorm.weight"), a.eps), start, cache)
            x = rms_norm(h, self.w(p + "post_attention_layernorm.weight"), a.eps)
            h = h + (self.moe(p + "mlp.", x) if self.is_moe(l) else self.mlp(p + "mlp.", x))
        h = rms_norm(h, self.w("model.norm.weight"), a.eps)
        head = self.w("model.embed_tokens.weight" if a.tie else "lm_head.weight")
        return h @ head.T

    def mlp(self, p, x):
        g, u = x @ self.w(p + "gate_proj.weight").T, x @ self.w(p + "up_proj.weight").T
        return (torch.nn.functional.silu(g) * u) @ self.w(p + "down_proj.weight").T

    def gate(self, p, x):
        """Gate.forward: (weights, indices) of the chosen experts for each row of x."""
        a = self.a
        scores = x @ self.w(p + "gate.weight").T
        scores = scores.softmax(dim=-1) if a.score_func == "softmax" else scores.sigmoid()
        original = scores
        bias = self.t.get(p + "gate.e_score_correction_bias")
        if bias is not None:
            scores = scores + bias
        if a.n_groups > 1 and a.topk_method != "greedy":
            scores = scores.view(x.size(0), a.n_groups, -1)
            group = scores.amax(dim=-1) if bias is None else scores.topk(2, dim=-1)[0].sum(dim=-1)
            keep = group.topk(a.topk_groups, dim=-1)[1]
            mask = torch.ones(x.size(0), a.n_groups, dtype=torch.bool).scatter_(1, keep, False)
            scores = scores.masked_fill(mask[..., None], float("-inf")).flatten(1)
        indices = scores.topk(a.topk, dim=-1)[1]
        weights = original.gather(1, indices)
        if a.norm_topk:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights * a.route_scale, indices

    def moe(self, p, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        weights, indices = self.gate(p, x)
        y = torch.zeros_like(x)
        for i in range(self.a.n_experts):
            idx, top = torch.where(indices == i)
            if idx.numel():
                y[idx] += self.mlp(p + f"experts.{i}.", x[idx]) * weights[idx, top, None]
        if self.a.n_shared:
            y = y + self.mlp(p + "shared_experts.", x)
        return y.view(shape)

    def is_moe(self, l):
        a = self.a
        return a.n_experts > 0 and l >= a.n_dense and l % a.moe_freq == 0

    def forward(self, tokens):
        """tokens (b, s) -> logits (b, s, vocab) of every position, positions from 0."""
        a = self.a
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        cos, sin = freqs_cis(a, tokens.shape[1], self.dtype)
        h = self.w("model.embed_tokens.weight")[tokens]
        for l in range(a.n_layers):
            p = f"model.layers.{l}."
            h = h + self.mla(l, rms_norm(h, self.w(p + "input_layernorm.weight"), a.eps), cos, sin)
            x = rms_norm(h, self.w(p + "post_attention_layernorm.weight"), a.eps)
            h = h + (self.moe(p + "mlp.", x) if self.is_moe(l) else self.mlp(p + "mlp.", x))
        h = rms_norm(h, self.w("model.norm.weight"), a.eps)
        head = self.w("model.embed_tokens.weight" if a.tie else "lm_head.weight")
        return h @ head.T
