#!/usr/bin/python3
"""mla.torch's MLA module against the same layer written in plain PyTorch, in one run: forward +
backward of one layer, and a short training run of seed 001's pre-norm transformer (RMSNorm, MLA,
GELU feed-forward, residual dropout) with the same initial weights and the same batches.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_torch_module.py [--quick]

The plain-PyTorch MLA is the naive form with torch ops (Linear, RMSNorm, interleaved RoPE,
matmul + causal masked softmax; torch 1.13 has no fused attention), autograd for backward. Both
sides run with torch's and OpenMP's thread count = --threads. Prints ms per step (median of the
repetitions) and both loss curves; the machine is shared, so read ratios, not absolute times.
"""
import argparse
import os
import statistics
import sys
import time


def _threads_from_argv(default=1):
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return default


# Both sides get the same threads: OpenMP (ours and torch's) and OpenBLAS (torch's matmuls) read
# these when they load, so they are set before torch is imported.
THREADS = _threads_from_argv()
os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)

import torch  # noqa: E402
from torch import nn  # noqa: E402

import mla.torch as mt  # noqa: E402


class TorchRMSNorm(nn.Module):
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(n)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class _Linear(nn.Module):
    def __init__(self, o, i):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(o, i))

    def forward(self, x):
        return nn.functional.linear(x, self.weight)


class TorchMLA(nn.Module):
    """The same MLA (seed 001's config: q and kv compression, RMSNorm latents, shared rotary
    key) in plain PyTorch; its state_dict has mla.torch's keys."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        h, dqk = c.num_heads, c.qk_nope_head_dim + c.qk_rope_head_dim
        self.q_a_proj = _Linear(c.q_lora_rank, c.hidden_size)
        self.q_a_layernorm = TorchRMSNorm(c.q_lora_rank, c.rms_norm_eps)
        self.q_b_proj = _Linear(h * dqk, c.q_lora_rank)
        self.kv_a_proj_with_mqa = _Linear(c.kv_lora_rank + c.qk_rope_head_dim, c.hidden_size)
        self.kv_a_layernorm = TorchRMSNorm(c.kv_lora_rank, c.rms_norm_eps)
        self.kv_b_proj = _Linear(h * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank)
        self.o_proj = _Linear(c.hidden_size, h * c.v_head_dim)
        dr = c.qk_rope_head_dim
        inv = c.rope_theta ** (-torch.arange(0, dr, 2, dtype=torch.float64) / dr)
        ang = torch.outer(torch.arange(c.max_position_embeddings, dtype=torch.float64), inv)
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def rope(self, x):  # interleaved pairs, x (..., S, Dr)
        s = x.shape[-2]
        cos, sin = self.cos[:s], self.sin[:s]
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)

    def forward(self, x):
        c = self.c
        bsz, s, _ = x.shape
        h, dn, dr, dv, r = (c.num_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim,
                            c.kv_lora_rank)
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))).view(bsz, s, h, dn + dr)
        q = q.transpose(1, 2)
        q_pe = self.rope(q[..., dn:])
        kv = self.kv_a_proj_with_mqa(x)
        k_pe = self.rope(kv[..., r:]).unsqueeze(1)  # (B, 1, S, Dr)
        kvb = self.kv_b_proj(self.kv_a_layernorm(kv[..., :r])).view(bsz, s, h, dn + dv)
        kvb = kvb.transpose(1, 2)
        k_nope, v = kvb[..., :dn], kvb[..., dn:]
        scores = (q[..., :dn] @ k_nope.transpose(-1, -2) + q_pe @ k_pe.transpose(-1, -2))
        scores = scores * c.softmax_scale
        mask = torch.ones(s, s, dtype=torch.bool).triu(1)
        p = scores.masked_fill(mask, float("-inf")).softmax(-1)
        o = (p @ v).transpose(1, 2).reshape(bsz, s, h * dv)
        return self.o_proj(o)


class Block(nn.Module):
    """Seed 001's TransformerBlock: x += drop(attn(norm(x))); x += drop(ff(norm(x)))."""

    def __init__(self, attn, d, ff, p):
        super().__init__()
        self.norm1, self.norm2, self.attn = TorchRMSNorm(d), TorchRMSNorm(d), attn
        self.drop = nn.Dropout(p)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(p), nn.Linear(ff, d))

    def forward(self, x):
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.ff(self.norm2(x)))


def model(attn_cls, cfg, args):
    torch.manual_seed(0)
    attns = [attn_cls(i) for i in range(args.layers)]
    blocks = [Block(a, args.d_model, 4 * args.d_model, args.dropout) for a in attns]
    return nn.Sequential(nn.Embedding(args.vocab, args.d_model), *blocks,
                         TorchRMSNorm(args.d_model), nn.Linear(args.d_model, args.vocab))


CLOCK = time.perf_counter  # --cpu-time: time.process_time


def timed(fns, reps):
    """Median ms of each function, calls interleaved (a, b, a, b, ...) so that the shared
    machine's load drifts over both alike."""
    for fn in fns:
        fn()  # warm-up: buffers grow, pools fill
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, ts in zip(fns, times):
            t = CLOCK()
            fn()
            ts.append(CLOCK() - t)
    return [statistics.median(ts) * 1e3 for ts in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1, help="threads of both sides (default 1)")
    ap.add_argument("--quick", action="store_true", help="small shapes, few steps")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the process's CPU time (all threads) instead of wall time: "
                         "steadier when the machine is shared and both sides run one thread")
    args = ap.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    if args.quick:
        args.seq, args.steps, args.reps, args.batch = 64, 6, 3, 2
    torch.set_num_threads(args.threads)
    mcfg = mt.MLAConfig(d_model=args.d_model, num_heads=args.heads,
                        kv_compressed_dim=args.d_model // 4, q_compressed_dim=args.d_model // 2,
                        rope_dim=32 if args.d_model // args.heads >= 32 else 8,
                        seq_len=max(args.seq, 256))
    c = mcfg.config
    clock = "CPU time" if args.cpu_time else "wall time"
    print(f"[{clock}] MLA d={c.hidden_size} H={c.num_heads} Rq={c.q_lora_rank} R={c.kv_lora_rank} "
          f"Dn={c.qk_nope_head_dim} Dr={c.qk_rope_head_dim}; batch {args.batch} x seq {args.seq};"
          f" threads {args.threads}")

    # 1. One layer, forward + backward.
    ours = {form: mt.MLA(mcfg, seed=1, train_form=form) for form in ("naive", "absorbed")}
    plain = TorchMLA(c)
    plain.load_state_dict(ours["naive"].state_dict())
    x = torch.randn(args.batch, args.seq, args.d_model, requires_grad=True)
    g = torch.randn(args.batch, args.seq, args.d_model)

    def step(m):
        return lambda: m(x).backward(g)

    forms = list(ours)
    ms_plain, *ms_ours = timed([step(plain)] + [step(ours[f]) for f in forms], args.reps)
    print(f"one layer fwd+bwd: plain PyTorch {ms_plain:8.2f} ms")
    for form, ms in zip(forms, ms_ours):
        print(f"one layer fwd+bwd: mla.torch {form:9s} {ms:8.2f} ms  ({ms_plain / ms:.2f}x)")
    with torch.no_grad():
        ms_plain, ms = timed([lambda: plain(x), lambda: ours["naive"](x)], args.reps)
    print(f"one layer forward, no grad: plain {ms_plain:.2f} ms, mla.torch {ms:.2f} ms "
          f"({ms_plain / ms:.2f}x)")
    best = forms[min(range(len(forms)), key=lambda i: ms_ours[i])]

    # 2. Seed 001's transformer, same init and batches, AdamW.
    m_ours = model(lambda i: mt.MLA(mcfg, seed=10 + i, train_form=best), c, args)
    m_plain = model(lambda i: TorchMLA(c), c, args)
    m_plain.load_state_dict(m_ours.state_dict())
    # A learnable stream: each sequence counts up by its own stride from a random start.
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, args.vocab, (args.steps + 1, args.batch, 1), generator=g)
    stride = torch.randint(1, 4, (args.steps + 1, args.batch, 1), generator=g)
    data = (start + stride * torch.arange(args.seq + 1)) % args.vocab
    nets = {"plain PyTorch": m_plain, f"mla.torch ({best})": m_ours}
    opts = {n: torch.optim.AdamW(net.parameters(), lr=1e-3) for n, net in nets.items()}
    curves = {n: [] for n in nets}
    times = {n: [] for n in nets}
    for s in range(args.steps + 1):  # the two models' steps interleaved, same batch, same masks
        for name, net in nets.items():
            torch.manual_seed(1000 + s)  # the same residual-dropout masks on both sides
            t = CLOCK()
            logits = net(data[s, :, :-1])
            loss = nn.functional.cross_entropy(logits.reshape(-1, args.vocab),
                                               data[s, :, 1:].reshape(-1))
            opts[name].zero_grad()
            loss.backward()
            opts[name].step()
            if s > 0:  # step 0 warms up
                times[name].append(CLOCK() - t)
            curves[name].append(loss.item())
    times = {n: statistics.median(ts) * 1e3 for n, ts in times.items()}
    names = list(curves)
    ratio = times[names[0]] / times[names[1]]
    print(f"training step ({args.layers} blocks, AdamW, dropout {args.dropout}): "
          + ", ".join(f"{n} {times[n]:.1f} ms" for n in names) + f"  ({ratio:.2f}x)")
    print("step  " + "  ".join(f"{n:>22s}" for n in names))
    for s in range(0, args.steps + 1, max(1, args.steps // 10)):
        print(f"{s:4d}  " + "  ".join(f"{curves[n][s]:22.4f}" for n in names))


if __name__ == "__main__":
    main()
