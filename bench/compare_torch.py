#!/usr/bin/python3
"""Absorbed MLA decode attention: our fused kernel against PyTorch (Debian's torch, CPU) running
DeepSeek-V3's absorbed formulation (einsum over the latent cache), same shapes, same run.

    /usr/bin/python3 bench/compare_torch.py [--bench build/bench/bench_kernels] [--quick]

Prints per shape: our ms, torch ms, speed-up, our GFLOP/s (H * L * (2 (R+Dr) + 2 R) per token).
"""
import argparse
import json
import statistics
import subprocess
import time

import torch

R, DR = 512, 64


def torch_decode_ms(heads, context, batch, threads, dtype, repeats):
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    q_nope = torch.randn(batch, 1, heads, R, generator=g).to(dtype) * 0.05  # already absorbed (W_UK folded in)
    q_pe = torch.randn(batch, 1, heads, DR, generator=g).to(dtype) * 0.05
    kv = torch.randn(batch, context, R, generator=g).to(dtype)
    pe = torch.randn(batch, context, DR, generator=g).to(dtype)
    scale = 0.07

    def step():
        # DeepSeek-V3 inference/model.py, attn_impl == "absorb", after W_UK is folded into q.
        scores = (torch.einsum("bshc,btc->bsht", q_nope, kv) + torch.einsum("bshr,btr->bsht", q_pe, pe)) * scale
        probs = scores.softmax(dim=-1, dtype=torch.float32).type_as(q_nope)
        return torch.einsum("bsht,btc->bshc", probs, kv)

    with torch.inference_mode():
        step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def ours(bench, heads, contexts, batches, threads, caches):
    pattern = "BM_LatentDecode/({})/({})/({})/({})/({})/".format(
        "|".join(map(str, heads)), "|".join(map(str, contexts)), "|".join(map(str, batches)),
        "|".join(map(str, threads)), "|".join(map(str, caches)))
    out = subprocess.run([bench, "--benchmark_filter=" + pattern, "--benchmark_format=json",
                          "--benchmark_min_time=0.2"], capture_output=True, text=True, check=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        parts = b["name"].split("/")
        key = tuple(int(x) for x in parts[1:6])
        result[key] = (b["real_time"], b["GFLOP/s"])
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench/bench_kernels")
    ap.add_argument("--quick", action="store_true", help="only V3 heads, context 4096")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    heads, contexts, batches, threads = ([128], [4096], [1, 8], [1, 2]) if args.quick else \
        ([16, 128], [1024, 4096, 16384], [1, 8], [1, 2])
    caches = [0, 1]
    mine = ours(args.bench, heads, contexts, batches, threads, caches)
    print(f"{'heads':>5} {'context':>7} {'batch':>5} {'thr':>3} {'cache':>5} {'ours ms':>9} {'torch ms':>9} "
          f"{'speed-up':>8} {'GFLOP/s':>8}")
    for (h, ctx, b, thr, bf16), (ms, gflops) in sorted(mine.items()):
        t = torch_decode_ms(h, ctx, b, thr, torch.bfloat16 if bf16 else torch.float32, args.repeats)
        print(f"{h:>5} {ctx:>7} {b:>5} {thr:>3} {'bf16' if bf16 else 'f32':>5} {ms:>9.3f} {t:>9.3f} "
              f"{t / ms:>7.1f}x {gflops / 1e9 if gflops > 1e6 else gflops:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
