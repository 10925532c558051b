#!/usr/bin/python3
"""MLA vs MHA vs GQA vs MQA: four models of about the same parameter count trained with the same
budget on the same text, then a table (validation loss, cache bytes per token, training and
generation tokens/s) and one plot of the validation curves. docs/training.md shows the result.

    /usr/bin/python3 bench/train_compare.py --data tinyshakespeare.txt [--mla build/mla]
        [--out runs/compare] [--steps 2000] [--threads 2] [--plot docs/img/training_comparison.png]
        [--reuse]

--reuse skips training for variants whose metrics and checkpoint already exist in --out.
The plot needs PIL (Debian python3-pil); the table does not.
"""
import argparse
import json
import os
import re
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# d 256, 4 layers, 8 heads. GQA (4 KV groups) and MQA have smaller attention layers; their
# feed-forward is widened so every model has ~3.23M parameters (MLA +0.5%).
VARIANTS = [("mla", []), ("mha", []), ("gqa", ["--ffn-hidden", "773"]), ("mqa", ["--ffn-hidden", "837"])]
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


def common(a, steps=None, eval_batches=16):
    return ["--d-model", "256", "--layers", "4", "--heads", "8", "--seq", "128", "--batch", "16", "--steps",
            str(steps or a.steps), "--lr", "3e-3", "--eval-every", "200", "--eval-batches", str(eval_batches),
            "--seed", "1", "--threads", str(a.threads), "--data", a.data, "--log-every", "100"]


def run_variant(a, name, extra):
    ck, metrics = os.path.join(a.out, "ck_" + name), os.path.join(a.out, name + ".jsonl")
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    if not (a.reuse and os.path.exists(metrics) and os.path.isdir(ck)):
        cmd = [a.mla, "train", "--attention", name, *extra, *common(a), "--checkpoint-dir", ck, "--metrics", metrics]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env=env)
    gen = subprocess.run([a.mla, "generate", "--checkpoint", ck, "--prompt", "ROMEO:", "--max-tokens", "400",
                          "--temperature", "0.8", "--top-k", "40", "--seed", "1", "--verbose"],
                         check=True, capture_output=True, text=True, env=env)
    with open(metrics) as f:
        rows = [json.loads(line) for line in f]
    info = subprocess.run([a.mla, "train", "--attention", name, *extra, *common(a, steps=1, eval_batches=1)],
                          check=True, capture_output=True, text=True, env=env).stdout
    params = int(re.search(r"(\d+) parameters", info).group(1))
    numbers = int(re.search(r"cache (\d+) numbers", info).group(1))
    return {
        "name": name, "params": params, "cache_numbers": numbers, "rows": rows,
        "val": [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r],
        "train_tps": statistics.median(r["tokens_per_second"] for r in rows if "val_loss" not in r),
        "gen_tps": float(re.search(r"\(([\d.]+) tokens/s\)", gen.stderr).group(1)),
        "sample": gen.stdout,
    }


def table(results):
    lines = ["| attention | parameters | cache per token per layer | KV cache, 4 layers, bf16 | final val loss "
             "| best val loss | train tokens/s | generate tokens/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['name'].upper()} | {r['params'] / 1e6:.2f} M | {r['cache_numbers']} numbers | "
                     f"{r['cache_numbers'] * 2 * 4:,} B | {r['val'][-1][1]:.4f} | {min(v for _, v in r['val']):.4f} | "
                     f"{r['train_tps']:,.0f} | {r['gen_tps']:.0f} |")
    return "\n".join(lines)


def plot(results, path):
    from PIL import Image, ImageDraw  # only the plot needs PIL

    w, h, left, right, top, bottom = 760, 480, 70, 20, 40, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    xs = [s for r in results for s, _ in r["val"]]
    ys = [v for r in results for _, v in r["val"]]
    x0, x1 = 0, max(xs)
    y0, y1 = min(ys) - 0.05, max(ys) + 0.05

    def px(x, y):
        return (left + (x - x0) / (x1 - x0) * (w - left - right), top + (y1 - y) / (y1 - y0) * (h - top - bottom))

    d.rectangle([left, top, w - right, h - bottom], outline="black")
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        d.line([px(x0, y), px(x1, y)], fill=(225, 225, 225))
        d.text((8, px(x0, y)[1] - 6), f"{y:.2f}", fill="black")
    for i in range(5):
        x = x1 * i / 4
        d.text((px(x, y0)[0] - 10, h - bottom + 8), f"{int(x)}", fill="black")
    d.text((w // 2 - 20, h - 20), "step", fill="black")
    d.text((left, 12), "validation loss (nats per byte), tiny shakespeare, ~3.2M parameters", fill="black")
    for r, color in zip(results, COLORS):
        pts = [px(s, v) for s, v in r["val"]]
        d.line(pts, fill=color, width=2)
        for p in pts:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=color)
    for i, (r, color) in enumerate(zip(results, COLORS)):
        y = top + 12 + 16 * i
        d.line([(w - 150, y + 6), (w - 125, y + 6)], fill=color, width=3)
        d.text((w - 118, y), f"{r['name'].upper()}  {r['val'][-1][1]:.3f}", fill="black")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--mla", default=os.environ.get("MLA_CLI", os.path.join(ROOT, "build", "mla")))
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--plot", default="")
    p.add_argument("--json", default="")
    p.add_argument("--reuse", action="store_true")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    results = [run_variant(a, name, extra) for name, extra in VARIANTS]
    print(table(results))
    for r in results:
        print(f"\n--- {r['name'].upper()} sample ---\n{r['sample'][:300]}")
    if a.plot:
        plot(results, a.plot)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{k: v for k, v in r.items() if k != "rows"} for r in results], f, indent=1)


if __name__ == "__main__":
    main()
