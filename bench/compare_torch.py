#!/usr/bin/python3
"""Absorbed MLA decode attention: our fused kernel against PyTorch (Debian's torch, CPU) running
DeepSeek-V3's absorbed formulation (inference/model.py, attn_impl == "absorb": einsums over the
latent cache and the rotary cache), on the same shapes, in the same run.

    /usr/bin/python3 bench/compare_torch.py [--bench build/bench/bench_attention] [--quick]

Then naive-path causal prefill (DeepSeek's attn_impl == "naive": per-head keys of width 192 and
values of width 128, scores einsum, causal mask, softmax, values einsum) against our tiled flash
kernel (BM_NaivePrefill): 16 heads at 1k and 4k tokens, 128 heads at 1k (torch's einsum holds
the heads x T x T score tensor and its softmax: ~26 GB at 128 heads and 4k tokens, ~100 GB at
16 heads and 16k, more than this machine has).

Shape by shape, our side runs bench_attention's BM_LatentDecode (JSON output, median of
--repetitions), then torch's side times the best of --repetitions steps after a warm-up, with
torch.set_num_threads equal to our thread count. Prints per shape: our ms, torch ms, torch/ours, our GFLOP/s and percent of
the peak measured in the same bench run (FLOPs: H * L * (2 (R + Dr) + 2 R) per token).
"""
import argparse
import json
import re
import subprocess
import time

import torch

R, DR = 512, 64


def best_ms(step, repetitions):
    """The best of `repetitions` timed runs after a warm-up: generous to the peer."""
    with torch.inference_mode():
        step()
        times = []
        for _ in range(repetitions):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    return min(times) * 1e3


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

    return best_ms(step, repetitions)


def torch_prefill_ms(heads, tokens, threads, repetitions):
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, tokens, heads, 192, generator=g)
    k = torch.randn(1, tokens, heads, 192, generator=g)
    v = torch.randn(1, tokens, heads, 128, generator=g)
    mask = torch.full((tokens, tokens), float("-inf")).triu_(1)

    def step():
        scores = torch.einsum("bshd,bthd->bsht", q, k) * 0.07
        scores += mask.unsqueeze(1)
        scores = scores.softmax(dim=-1, dtype=torch.float32)
        return torch.einsum("bsht,bthd->bshd", scores, v)

    return best_ms(step, repetitions)


def bench_json(bench, pattern, repetitions):
    # Torch's BLAS threads spin for a while after its last call; let them sleep so that they do
    # not steal a core from our run (and from the peak it measures).
    time.sleep(1.0)
    out = subprocess.run([bench, "--benchmark_filter=" + pattern, "--benchmark_format=json",
                          "--benchmark_repetitions=%d" % repetitions,
                          "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.2"],
                         capture_output=True, text=True, check=True).stdout
    # One repetition gives no aggregates: take the run itself.
    wanted = "iteration" if repetitions == 1 else "aggregate"
    return [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == wanted and
            (repetitions == 1 or b.get("aggregate_name") == "median")]


def ours(bench, heads, contexts, batches, threads, caches, repetitions):
    alt = lambda values: "(" + "|".join(map(str, values)) + ")"
    pattern = "BM_LatentDecode/heads:{}/ctx:{}/batch:{}/thr:{}/bf16:{}/".format(
        alt(heads), alt(contexts), alt(batches), alt(threads), alt(caches))
    result = {}
    for b in bench_json(bench, pattern, repetitions):
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
    ap.add_argument("--prefill-only", action="store_true", help="skip the decode shapes")
    args = ap.parse_args()
    heads, contexts = ([128], [4096]) if args.quick else ([16, 128], [1024, 4096, 16384])
    shapes = [(h, ctx, b, thr, bf16) for h in heads for ctx in contexts for b in (1, 8)
              for thr in (1, 2) for bf16 in (0, 1)]
    print(f"torch {torch.__version__}, {len(shapes)} shapes; ours: median of {args.repetitions}, "
          f"torch: best of {args.repetitions}")
    print(f"{'heads':>5} {'context':>7} {'batch':>5} {'thr':>3} {'cache':>5} {'ours ms':>9} "
          f"{'torch ms':>9} {'torch/ours':>10} {'GFLOP/s':>8} {'%peak':>6}")
    # Shape by shape, ours then torch's, so that both sides of a ratio see the same machine state.
    for shape in [] if args.prefill_only else shapes:
        h, ctx, b, thr, bf16 = shape
        ms, gflops, pct = ours(args.bench, [h], [ctx], [b], [thr], [bf16], args.repetitions)[shape]
        t = torch_decode_ms(h, ctx, b, thr, torch.bfloat16 if bf16 else torch.float32,
                            args.repetitions)
        print(f"{h:>5} {ctx:>7} {b:>5} {thr:>3} {'bf16' if bf16 else 'f32':>5} {ms:>9.3f} "
              f"{t:>9.3f} {t / ms:>9.2f}x {gflops:>8.1f} {pct:>6.1f}", flush=True)

    print("\nnaive prefill, causal, one sequence (keys 192, values 128 per head)")
    print(f"{'heads':>5} {'tokens':>7} {'thr':>3} {'ours ms':>9} {'torch ms':>9} "
          f"{'torch/ours':>10} {'GFLOP/s':>8} {'%peak':>6}")
    prefill_tokens = [1024] if args.quick else [1024, 4096]
    reps = min(args.repetitions, 3)
    for h in heads:
        # At 128 heads and 4k tokens torch's score tensors need ~26 GB: more than this machine.
        for tokens in [t for t in prefill_tokens if h * t * t <= 16 * 4096 * 4096]:
            for thr in (1, 2):
                pattern = f"BM_NaivePrefill/heads:{h}/tokens:{tokens}/thr:{thr}/"
                b = bench_json(args.bench, pattern, reps)[0]
                t = torch_prefill_ms(h, tokens, thr, reps)
                ms = b["real_time"]
                print(f"{h:>5} {tokens:>7} {thr:>3} {ms:>9.2f} {t:>9.2f} {t / ms:>9.2f}x "
                      f"{b['GFLOP/s']:>8.1f} {b.get('pct_peak', float('nan')):>6.1f}", flush=True)


if __name__ == "__main__":
    main()
