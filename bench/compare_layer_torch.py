#!/usr/bin/python3
"""Whole MLA layer (projections included), DeepSeek-V3 shape: our `mla bench` against PyTorch
(Debian's torch, CPU) running DeepSeek's formulation -- absorbed decode over preallocated latent
and rotary caches, naive prefill with per-head K/V, einsums as in DeepSeek-V3's inference/model.py
-- on the same shapes, in the same run, and each against its floor measured in the same run.

    /usr/bin/python3 bench/compare_layer_torch.py [--mla build/mla] [--quick]

Decode: one token per sequence at context --context (default 4096), batch 1 and 8, threads 1
and 2, f32 and bf16 (weights and cache both in that precision; float32 accumulation on our side,
torch computes in the tensor dtype). Memory floor = (weight bytes + cache bytes) / read
bandwidth; compute floor = FLOPs (mla-math.md) / peak of the precision (FMA for f32, VDPBF16PS
for bf16), all measured by `mla bench` in its run. Prefill: --prefill tokens (default 2048) of one
sequence, our naive and absorbed paths against torch's naive, percent of the precision's peak.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# DeepSeek-V3 attention (config.json of deepseek-ai/DeepSeek-V3); YaRN only rescales the
# frequencies and the softmax scale, which does not change the cost.
D, H, RQ, R, DN, DR, DV = 7168, 128, 1536, 512, 128, 64, 128


class TorchMla:
    """DeepSeek's MLA layer in the formulation of its official inference code."""

    def __init__(self, dtype, batch, max_len, seed=0):
        g = torch.Generator().manual_seed(seed)

        def w(o, i):
            return (torch.randn(o, i, generator=g) * i ** -0.5).to(dtype)

        self.dtype = dtype
        self.wq_a, self.q_norm, self.wq_b = w(RQ, D), torch.ones(RQ, dtype=dtype), w(H * (DN + DR), RQ)
        self.wkv_a, self.kv_norm, self.wkv_b = w(R + DR, D), torch.ones(R, dtype=dtype), w(H * (DN + DV), R)
        self.wo = w(D, H * DV)
        self.scale = (DN + DR) ** -0.5
        self.kv_cache = torch.zeros(batch, max_len, R, dtype=dtype)
        self.pe_cache = torch.zeros(batch, max_len, DR, dtype=dtype)
        freqs = 1.0 / (10000.0 ** (torch.arange(0, DR, 2, dtype=torch.float32) / DR))
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), freqs)
        self.freqs_cis = torch.polar(torch.ones_like(angles), angles)

    @staticmethod
    def rms(x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).type_as(x) * w

    def rope(self, x, start):
        # Interleaved pairs as complex numbers, as DeepSeek's apply_rotary_emb.
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        f = self.freqs_cis[start:start + x.size(1)].view(1, x.size(1), *([1] * (x.dim() - 3)), -1)
        return torch.view_as_real(xc * f).flatten(-2).type_as(x)

    def project(self, x, start):
        b, s, _ = x.shape
        q = (self.rms(x @ self.wq_a.T, self.q_norm) @ self.wq_b.T).view(b, s, H, DN + DR)
        q_nope, q_pe = q.split([DN, DR], dim=-1)
        kv, k_pe = (x @ self.wkv_a.T).split([R, DR], dim=-1)
        return q_nope, self.rope(q_pe, start), self.rms(kv, self.kv_norm), self.rope(k_pe.unsqueeze(2), start)

    def decode(self, x, start):
        b, s, _ = x.shape
        end = start + s
        q_nope, q_pe, kv, k_pe = self.project(x, start)
        wkv_b = self.wkv_b.view(H, DN + DV, R)
        q_nope = torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :DN])
        self.kv_cache[:b, start:end] = kv
        self.pe_cache[:b, start:end] = k_pe.squeeze(2)
        scores = (torch.einsum("bshc,btc->bsht", q_nope, self.kv_cache[:b, :end]) +
                  torch.einsum("bshr,btr->bsht", q_pe, self.pe_cache[:b, :end])) * self.scale
        scores = scores.softmax(dim=-1, dtype=torch.float32).type_as(x)
        o = torch.einsum("bsht,btc->bshc", scores, self.kv_cache[:b, :end])
        o = torch.einsum("bshc,hdc->bshd", o, wkv_b[:, -DV:])
        return o.flatten(2) @ self.wo.T

    def prefill_naive(self, x):
        b, s, _ = x.shape
        q_nope, q_pe, kv, k_pe = self.project(x, 0)
        q = torch.cat([q_nope, q_pe], dim=-1)
        kv = (kv @ self.wkv_b.T).view(b, s, H, DN + DV)
        k_nope, v = kv.split([DN, DV], dim=-1)
        k = torch.cat([k_nope, k_pe.expand(-1, -1, H, -1)], dim=-1)
        scores = torch.einsum("bshd,bthd->bsht", q, k) * self.scale
        scores = scores + torch.full((s, s), float("-inf")).triu_(1).unsqueeze(1)
        scores = scores.softmax(dim=-1, dtype=torch.float32).type_as(x)
        o = torch.einsum("bsht,bthd->bshd", scores, v)
        return o.flatten(2) @ self.wo.T


def best_ms(fn, repeats):
    """The peer's best of `repeats` runs after a warm-up: generous to it."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def torch_decode_ms(batch, context, threads, dtype, repeats):
    torch.set_num_threads(threads)
    m = TorchMla(dtype, batch, context + 1)
    m.kv_cache.normal_()
    m.pe_cache.normal_()
    x = torch.randn(batch, 1, D).to(dtype)
    with torch.inference_mode():
        return best_ms(lambda: m.decode(x, context), repeats)


def torch_prefill_ms(tokens, threads, dtype, repeats):
    torch.set_num_threads(threads)
    m = TorchMla(dtype, 1, tokens)
    x = torch.randn(1, tokens, D).to(dtype)
    with torch.inference_mode():
        return best_ms(lambda: m.prefill_naive(x), repeats)


def ours(mla, *args):
    # Torch's BLAS threads spin for a while after its last call: let them sleep first so that
    # they do not steal a core from our run and from the peaks it measures.
    time.sleep(1.0)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "b.json")
        subprocess.run([mla, "bench", "--preset", "deepseek-v3", "--json", out, *args], check=True,
                       capture_output=True, text=True)
        return json.load(open(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mla", default=os.path.join(ROOT, "build", "mla"))
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--prefill", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 threads only")
    ap.add_argument("--parts", default="decode,prefill", help="decode, prefill or both (default)")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    if not parts or parts - {"decode", "prefill"}:
        ap.error(f"--parts: expected decode, prefill or decode,prefill, got {a.parts!r}")
    threads = [2] if a.quick else [1, 2]
    print(f"torch {torch.__version__}; DeepSeek-V3 attention layer, ours: median of {a.repeats}, torch: best of {a.repeats}")
    if "decode" in parts:
        decode_table(a, threads)
    if "prefill" in parts:
        prefill_table(a, threads)


def decode_table(a, threads):
    print("\ndecode step, context", a.context)
    print(f"{'batch':>5} {'thr':>3} {'prec':>5} {'ours ms':>9} {'torch ms':>9} {'torch/ours':>10} "
          f"{'mem floor':>9} {'x floor':>7} {'cmp floor':>9} {'x floor':>7} {'GFLOP/s':>8} {'%peak':>6}")
    for batch in (1, 8):
        for thr in threads:
            for prec in ("f32", "bf16"):
                j = ours(a.mla, "--variants", "mla", "--contexts", str(a.context), "--batch", str(batch),
                         "--threads", str(thr), "--dtype", prec, "--weight-dtype", prec, "--repeats",
                         str(a.repeats), "--prefill-tokens", "16")
                v, p = j["variants"][0], j["variants"][0]["points"][0]
                ms = p["decode_seconds_per_token"] * 1e3
                cache = batch * a.context * v["cache_bytes_per_token"]
                mem_floor = (v["weight_bytes"] + cache) / (j["read_bandwidth_gb_per_s"] * 1e9) * 1e3
                cmp_floor = p["gflops"] * ms / j["peak_gflops"]["reference"]
                t = torch_decode_ms(batch, a.context, thr, torch.bfloat16 if prec == "bf16" else torch.float32,
                                    a.repeats)
                print(f"{batch:>5} {thr:>3} {prec:>5} {ms:>9.2f} {t:>9.2f} {t / ms:>9.2f}x {mem_floor:>9.2f} "
                      f"{ms / mem_floor:>6.2f}x {cmp_floor:>9.2f} {ms / cmp_floor:>6.2f}x {p['gflops']:>8.1f} "
                      f"{p['percent_of_peak']:>6.1f}", flush=True)


def prefill_table(a, threads):
    print("\nprefill,", a.prefill, "tokens, batch 1 (torch: naive)")
    print(f"{'thr':>3} {'prec':>5} {'path':>8} {'ours ms':>9} {'torch ms':>9} {'torch/ours':>10} {'GFLOP/s':>8} "
          f"{'%peak':>6}")
    for thr in threads:
        for prec in ("f32", "bf16"):
            j = ours(a.mla, "--variants", "mla-naive,mla", "--contexts", str(a.prefill), "--batch", "1",
                     "--threads", str(thr), "--dtype", prec, "--weight-dtype", prec, "--repeats", "1",
                     "--prefill-tokens", str(a.prefill))
            t = torch_prefill_ms(a.prefill, thr, torch.bfloat16 if prec == "bf16" else torch.float32,
                                 max(1, a.repeats // 2))
            for v in j["variants"]:
                p = v["points"][0]
                ms = a.prefill / p["prefill_tokens_per_second"] * 1e3
                print(f"{thr:>3} {prec:>5} {v['name']:>8} {ms:>9.1f} {t:>9.1f} {t / ms:>9.2f}x "
                      f"{p['prefill_gflops']:>8.1f} {p['prefill_percent_of_peak']:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
