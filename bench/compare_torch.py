#!/usr/bin/python3
"""Absorbed MLA decode attention: our fused kernel against PyTorch (Debian's torch, CPU) running
DeepSeek-V3's absorbed formulation (inference/model.py, attn_impl == "absorb": einsums over the
latent cache and the rotary cache), on the same shapes, in the same run.

    /usr/bin/python3 bench/compare_torch.py [--bench build/bench/bench_attention] [--quick]

Shape by shape, our side runs bench_attention's BM_LatentDecode (JSON output, median of
--repetitions), then torch's side times the median of --repetitions steps after a warm-up, with
torch.set_num_threads equal to our thread count. Prints per shape: our ms, torch ms, torch/ours, our GFLOP/s and percent of
the peak measured in the same bench run (FLOPs: H * L * (2 (R + Dr) + 2 R) per token).
"""
import argparse
import json
import re
import statistics
import subprocess
import time

import torch

R, DR = 512, 64


def torch_decode_ms(heads, context, batch, threads, dtype, repetitions):
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    # q_nope already absorbed: W_UK folded in, as model.py does before the score einsum.
    q_nope = torch.randn(batch, 1, heads, R, generator=g).to(dtype)
    q_pe = torch.randn(batch, 1, heads, DR, generator=g).to(dtype)
    kv_cache = torch.randn(batch, context, R, generator=g).to(dtype)
    pe_cache = torch.randn(batch, context, DR, generator=g).to(dtype)
    softmax_scale = 1.0 / 24.0

    def step():
        scores = (torch.einsum("bshc,btc->bsht", q_nope, kv_cache) +
                  torch.einsum("bshr,btr->bsht", q_pe, pe_cache)) * softmax_scale
        scores = scores.softmax(dim=-1, dtype=torch.float32).type_as(q_nope)
        return torch.einsum("bsht,btc->bshc", scores, kv_cache)

    with torch.inference_mode():
        step()
        times = []
        for _ in range(repetitions):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def ours(bench, heads, contexts, batches, threads, caches, repetitions):
    alt = lambda values: "(" + "|".join(map(str, values)) + ")"
    pattern = "BM_LatentDecode/heads:{}/ctx:{}/batch:{}/thr:{}/bf16:{}/".format(
        alt(heads), alt(contexts), alt(batches), alt(threads), alt(caches))
    out = subprocess.run([bench, "--benchmark_filter=" + pattern, "--benchmark_format=json",
                          "--benchmark_repetitions=%d" % repetitions,
                          "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.2"],
                         capture_output=True, text=True, check=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        args = dict((k, int(v)) for k, v in re.findall(r"(\w+):(\d+)", b["run_name"]))
        key = (args["heads"], args["ctx"], args["batch"], args["thr"], args["bf16"])
        result[key] = (b["real_time"], b["GFLOP/s"], b.get("pct_peak", float("nan")))
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench/bench_attention")
    ap.add_argument("--quick", action="store_true", help="only 128 heads, context 4096")
    ap.add_argument("--repetitions", type=int, default=5)
    args = ap.parse_args()
    heads, contexts = ([128], [4096]) if args.quick else ([16, 128], [1024, 4096, 16384])
    shapes = [(h, ctx, b, thr, bf16) for h in heads for ctx in contexts for b in (1, 8)
              for thr in (1, 2) for bf16 in (0, 1)]
    print(f"torch {torch.__version__}, {len(shapes)} shapes, medians of {args.repetitions}")
    print(f"{'heads':>5} {'context':>7} {'batch':>5} {'thr':>3} {'cache':>5} {'ours ms':>9} "
          f"{'torch ms':>9} {'torch/ours':>10} {'GFLOP/s':>8} {'%peak':>6}")
    # Shape by shape, ours then torch's, so that both sides of a ratio see the same machine state.
    for shape in shapes:
        h, ctx, b, thr, bf16 = shape
        ms, gflops, pct = ours(args.bench, [h], [ctx], [b], [thr], [bf16], args.repetitions)[shape]
        t = torch_decode_ms(h, ctx, b, thr, torch.bfloat16 if bf16 else torch.float32,
                            args.repetitions)
        print(f"{h:>5} {ctx:>7} {b:>5} {thr:>3} {'bf16' if bf16 else 'f32':>5} {ms:>9.3f} "
              f"{t:>9.3f} {t / ms:>9.2f}x {gflops:>8.1f} {pct:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
