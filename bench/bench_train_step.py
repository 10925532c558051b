#!/usr/bin/python3
"""One training step (forward, backward, gradient clipping, AdamW) of the same model and batch in
our code (`mla train`) and in PyTorch (Debian's torch, CPU, float32), in the same run.

    /usr/bin/python3 bench/bench_train_step.py [--mla build/mla] [--attention mla] [--d-model 256]
        [--layers 4] [--heads 8] [--batch 8] [--seq 256] [--steps 20] [--threads N]

Our side: `mla train` on the built-in copy task with --metrics; the median of the per-step
"seconds" over the timed steps (after --warmup steps). Torch side: the model of our checkpoint
(same config and weights, written by a 1-step run) rebuilt from tests/reference/train_reference.py
in float32, the same batch shape, torch.optim.AdamW and clip_grad_norm_, median of the timed
steps after the same warm-up, torch.set_num_threads equal to ours. Prints both and the ratio.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import safetensors_io  # noqa: E402
import train_reference  # noqa: E402


def model_flags(a):
    return ["--attention", a.attention, "--d-model", a.d_model, "--layers", a.layers, "--heads", a.heads,
            "--batch", a.batch, "--seq", a.seq, "--threads", a.threads, "--eval-every", 1 << 30]


def ours(a, tmp):
    metrics = os.path.join(tmp, "m.jsonl")
    cmd = [a.mla, "train", *model_flags(a), "--steps", a.warmup + a.steps, "--metrics", metrics, "--log-every", 1 << 30]
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, env=dict(os.environ, OMP_WAIT_POLICY="passive"))
    with open(metrics) as f:
        rows = [json.loads(line) for line in f]
    return statistics.median(r["seconds"] for r in rows[a.warmup:])


def theirs(a, tmp):
    ck = os.path.join(tmp, "ck")
    cmd = [a.mla, "train", *model_flags(a), "--steps", 1, "--checkpoint-dir", ck]
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    path = os.path.join(ck, "step_00000001.safetensors")
    config = json.loads(train_reference.read_metadata(path)["config"])
    tensors = safetensors_io.read(path)
    params = {n: torch.tensor(v, dtype=torch.float32, requires_grad=True) for n, v in tensors.items()
              if not n.startswith("optimizer.")}
    torch.set_num_threads(a.threads)
    decay = [t for t in params.values() if t.dim() == 2]
    rest = [t for t in params.values() if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(0)
    times = []
    for step in range(a.warmup + a.steps):
        tokens = torch.randint(97, 123, (a.batch, a.seq), generator=g)
        targets = torch.randint(97, 123, (a.batch, a.seq), generator=g)
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = train_reference.lm_loss(config, params, tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[a.warmup:])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mla", default=os.environ.get("MLA_CLI", os.path.join(ROOT, "build", "mla")))
    p.add_argument("--attention", default="mla", choices=["mla", "mha", "gqa", "mqa"])
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours_s = ours(a, tmp)
        torch_s = theirs(a, tmp)
    tokens = a.batch * a.seq
    print(f"training step, {a.attention} d_model {a.d_model} layers {a.layers} heads {a.heads}, "
          f"batch {a.batch} x {a.seq} tokens, {a.threads} threads, torch {torch.__version__}")
    print(f"  mla.cpp : {ours_s * 1e3:9.1f} ms/step  {tokens / ours_s:10.0f} tokens/s")
    print(f"  pytorch : {torch_s * 1e3:9.1f} ms/step  {tokens / torch_s:10.0f} tokens/s")
    print(f"  speed-up: {torch_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
