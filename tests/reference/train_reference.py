"""PyTorch reference for training: the decoder-only LM of src/train, written from the spec
(docs/training.md, docs/math.md) in float64 with torch.autograd, not from our C++.

Usage: train_reference.py FIXTURE.safetensors OUT.safetensors

The fixture (written by tests/train/test_train_torch.cc) holds every parameter by its Hugging Face
name, "tokens" and "targets" (B, S) stored as F32, and metadata: "config" (the LM config JSON) and
"optim" (JSON: steps, lr list, beta1, beta2, eps, weight_decay, grad_clip). The output holds "loss"
(the first forward) and "losses" (one per optimiser step, before the step) as metadata, and the
tensors "grad.<name>" for every parameter and "final.<name>" (after the last step).
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mla_reference  # noqa: E402
import safetensors_io  # noqa: E402


def read_metadata(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)).get("__metadata__", {})


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def norm(cfg, x, p, prefix):
    if cfg["norm"] == "rmsnorm":
        return rms_norm(x, p[prefix + ".weight"], cfg["norm_eps"])
    return F.layer_norm(x, (x.shape[-1],), p[prefix + ".weight"], p[prefix + ".bias"], cfg["norm_eps"])


def rope_cos_sin(freqs, amplitude, seq):
    """cos/sin (S, Dr/2) the way the C++ forms them: float32 angle, cos in double, rounded."""
    pos = torch.arange(seq, dtype=torch.float32)[:, None]
    angle = pos * freqs[None, :]  # one float32 rounding, like p * f_k in float
    cos = torch.cos(angle.double()).float() * amplitude
    sin = torch.sin(angle.double()).float() * amplitude
    return cos.double(), sin.double()


def rope(x, cos, sin):
    """Interleaved pairs (x[2k], x[2k+1]) rotated; x (B, S, n, Dr), cos/sin (S, Dr/2)."""
    a, b = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :].to(x.dtype), sin[None, :, None, :].to(x.dtype)  # float32 runs stay float32
    return torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)


def attention(q, k, v, scale):
    """q (B,S,H,Dqk), k (B,S,H,Dqk), v (B,S,H,Dv): causal softmax attention."""
    s = q.shape[1]
    scores = torch.einsum("bshd,bthd->bhst", q, k) * scale
    mask = torch.ones(s, s, dtype=torch.bool, device=q.device).triu(1)
    probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    return torch.einsum("bhst,bthd->bshd", probs, v)


def mla_attention(c, x, p, pre):
    m = c["mla"]
    cfg = mla_reference.Config.from_json(m)
    h, dn, dr, dv, r = (m["num_attention_heads"], m["qk_nope_head_dim"], m["qk_rope_head_dim"], m["v_head_dim"],
                        m["kv_lora_rank"])
    b, s, _ = x.shape
    eps = m.get("rms_norm_eps", 1e-6)
    if m.get("q_lora_rank"):
        q = rms_norm(x @ p[pre + "q_a_proj.weight"].T, p[pre + "q_a_layernorm.weight"], eps) @ p[pre + "q_b_proj.weight"].T
    else:
        q = x @ p[pre + "q_proj.weight"].T
    q = q.view(b, s, h, dn + dr)
    kv = x @ p[pre + "kv_a_proj_with_mqa.weight"].T
    ckv = rms_norm(kv[..., :r], p[pre + "kv_a_layernorm.weight"], eps)
    kpe = kv[..., r:].unsqueeze(2)  # (B, S, 1, Dr): one rotary key for all heads
    if dr > 0:
        amplitude = 1.0
        if cfg.yarn():
            sc = cfg.rope_scaling

            def ms(scale):
                return 0.1 * scale * math.log(sc["factor"]) + 1.0

            amplitude = ms(sc.get("mscale", 1.0)) / ms(sc.get("mscale_all_dim", 0.0))
        cos, sin = rope_cos_sin(mla_reference.yarn_frequencies(cfg), amplitude, s)
        q = torch.cat([q[..., :dn], rope(q[..., dn:], cos, sin)], dim=-1)
        kpe = rope(kpe, cos, sin)
    kvb = (ckv @ p[pre + "kv_b_proj.weight"].T).view(b, s, h, dn + dv)
    k = torch.cat([kvb[..., :dn], kpe.expand(b, s, h, dr)], dim=-1)
    o = attention(q, k, kvb[..., dn:], cfg.softmax_scale())
    return o.reshape(b, s, h * dv) @ p[pre + "o_proj.weight"].T


def gqa_attention(c, x, p, pre):
    g = c["gqa"]
    h, kvh, dh, rd = g["num_heads"], g["num_kv_heads"], g["head_dim"], g["rope_dim"]
    b, s, _ = x.shape
    q = (x @ p[pre + "q_proj.weight"].T).view(b, s, h, dh)
    k = (x @ p[pre + "k_proj.weight"].T).view(b, s, kvh, dh)
    v = (x @ p[pre + "v_proj.weight"].T).view(b, s, kvh, dh)
    if rd > 0:
        freqs = torch.tensor([g["rope_theta"] ** (-2.0 * i / rd) for i in range(rd // 2)], dtype=torch.float32)
        cos, sin = rope_cos_sin(freqs, 1.0, s)
        q = torch.cat([rope(q[..., :rd], cos, sin), q[..., rd:]], dim=-1)
        k = torch.cat([rope(k[..., :rd], cos, sin), k[..., rd:]], dim=-1)
    k = k.repeat_interleave(h // kvh, dim=2)  # query head i uses KV head i // (H / G)
    v = v.repeat_interleave(h // kvh, dim=2)
    return attention(q, k, v, dh ** -0.5).reshape(b, s, h * dh) @ p[pre + "o_proj.weight"].T


def ffn(c, x, p, pre):
    if c["ffn"] == "swiglu":
        hidden = F.silu(x @ p[pre + "gate_proj.weight"].T) * (x @ p[pre + "up_proj.weight"].T)
    else:
        hidden = F.gelu(x @ p[pre + "up_proj.weight"].T, approximate="tanh")
    return hidden @ p[pre + "down_proj.weight"].T


def lm_loss(c, p, tokens, targets):
    x = p["model.embed_tokens.weight"][tokens]
    for layer in range(c["num_layers"]):
        pre = f"model.layers.{layer}."
        attn = mla_attention if c["attention"] == "mla" else gqa_attention
        x = x + attn(c, norm(c, x, p, pre + "input_layernorm"), p, pre + "self_attn.")
        x = x + ffn(c, norm(c, x, p, pre + "post_attention_layernorm"), p, pre + "mlp.")
    x = norm(c, x, p, "model.norm")
    head = p["model.embed_tokens.weight"] if c["tied_embeddings"] else p["lm_head.weight"]
    logits = x @ head.T
    scored = targets >= 0
    return F.cross_entropy(logits[scored], targets[scored])


def main(fixture, out_path):
    tensors = safetensors_io.read(fixture)
    meta = read_metadata(fixture)
    c = json.loads(meta["config"])
    optim = json.loads(meta["optim"])
    tokens = torch.tensor(tensors.pop("tokens")).long()
    targets = torch.tensor(tensors.pop("targets")).long()
    params = {name: torch.tensor(v, dtype=torch.float64, requires_grad=True) for name, v in tensors.items()}

    loss = lm_loss(c, params, tokens, targets)
    loss.backward()
    out = {"loss": torch.tensor([loss.item()])}
    for name, t in params.items():
        out["grad." + name] = t.grad.detach().clone()

    decay = [t for name, t in params.items() if t.dim() == 2]
    no_decay = [t for name, t in params.items() if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": optim["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=optim["lr"][0], betas=(optim["beta1"], optim["beta2"]), eps=optim["eps"])
    losses = []
    for step in range(optim["steps"]):
        for group in opt.param_groups:
            group["lr"] = optim["lr"][step]
        opt.zero_grad()
        loss = lm_loss(c, params, tokens, targets)
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), optim["grad_clip"])
        opt.step()
    for name, t in params.items():
        out["final." + name] = t.detach().clone()
    # Tensors as F32 (what the C++ reader takes; 6e-8 relative, far below the tolerances); the
    # losses in full precision as metadata.
    first = out.pop("loss").item()
    safetensors_io.write(out_path, {k: v.numpy() for k, v in out.items()}, dtype="F32",
                         metadata={"loss": repr(first), "losses": json.dumps(losses)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
