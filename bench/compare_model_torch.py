"""Whole-model decode and prefill: `mla bench --model DIR` against the PyTorch transcription of
DeepSeek's official Transformer (tests/reference/deepseek_reference.py, cached "absorb" path,
bf16 weights as the official code runs them) on the same checkpoint, side by side in one run.

    python3 bench/make_random_model.py --out /tmp/v2lite-4 --layers 4
    python3 bench/compare_model_torch.py --model /tmp/v2lite-4 --threads 2

Prints one table (tokens/s, ratio, memory floor) and writes --json if given.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import deepseek_reference as dr  # noqa: E402


def mapped_tensors(path):
    """name -> torch tensor viewing the file (bf16 or f32), no copy."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    n = int(np.frombuffer(raw[:8].tobytes(), dtype="<u8")[0])
    header = json.loads(raw[8 : 8 + n].tobytes())
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        chunk = raw[8 + n + begin : 8 + n + end]
        if info["dtype"] == "BF16":
            t = torch.from_numpy(np.asarray(chunk.view(np.int16))).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.asarray(chunk.view(np.float32)))
        out[name] = t.view(info["shape"])
    return out


def torch_side(cfg, tensors, args):
    model = dr.Model(cfg, tensors, dtype=torch.bfloat16)
    vocab = cfg["vocab_size"]
    results = {}
    with torch.no_grad():
        cache = model.new_cache(1, args.prefill_tokens)
        tokens = torch.arange(args.prefill_tokens)[None] * 7919 % vocab
        start = time.perf_counter()
        model.step(tokens, 0, cache)
        results["prefill"] = args.prefill_tokens / (time.perf_counter() - start)
        for b in args.batches:
            cache = model.new_cache(b, args.context + args.steps + 2)
            model.step(torch.arange(b * args.context).view(b, -1) * 104729 % vocab, 0, cache)
            times = []
            for s in range(args.steps + 1):
                t0 = time.perf_counter()
                model.step(torch.full((b, 1), 3 + s), args.context + s, cache)
                if s:
                    times.append(time.perf_counter() - t0)
            results[b] = b / sorted(times)[len(times) // 2]
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--mla", default=os.path.join(HERE, "..", "build", "mla"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--prefill-tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        subprocess.run([args.mla, "bench", "--model", args.model, "--threads", str(args.threads),
                        "--batches", ",".join(map(str, args.batches)), "--decode-context",
                        str(args.context), "--prefill-tokens", str(args.prefill_tokens),
                        "--repeats", str(args.steps), "--json", out], check=True)
        ours = json.load(open(out))
    theirs = torch_side(cfg, mapped_tensors(os.path.join(args.model, "model.safetensors")), args)
    floor = ours["memory_floor"]
    rows = [("prefill", ours["prefill"]["tokens_per_second"], theirs["prefill"])]
    for d in ours["decode"]:
        rows.append((f"decode batch {d['batch']}", d["tokens_per_second"], theirs[d["batch"]]))
    print(f"{cfg['num_hidden_layers']} layers, bf16 weights, {args.threads} threads, context {args.context}")
    print("| measure | mla.cpp tokens/s | official Transformer (torch) tokens/s | ratio |")
    print("|---|---:|---:|---:|")
    for name, a, b in rows:
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
    step = ours["decode"][0]["step_seconds"] if ours["decode"][0]["batch"] == 1 else None
    print(f"memory floor of a batch-1 step: {1e3 * floor['seconds']:.1f} ms "
          f"({floor['active_weight_bytes'] / 1e6:.0f} MB + {floor['cache_bytes'] / 1e3:.0f} KB at "
          f"{floor['bandwidth_gbs']:.1f} GB/s)" +
          (f"; measured {1e3 * step:.1f} ms = {step / floor['seconds']:.2f}x" if step else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mla": ours, "torch": {str(k): v for k, v in theirs.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
