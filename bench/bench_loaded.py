#!/usr/bin/env python3
"""Decode on a loaded machine: `mla bench` decode steps of the tiny and the DeepSeek-V2-Lite
shape, idle and then with busy competing processes (pure spin loops, one per --competitors,
killed when the run ends or after --limit seconds), per thread count. Reports the median and
the slowest step and the slowdown loaded / idle, measured side by side in one run.

    /usr/bin/python3 bench/bench_loaded.py                 # build/mla, 1 competitor
    /usr/bin/python3 bench/bench_loaded.py --threads 2 --wait-policies default,passive

Issue 18's target: with a busy competitor no decode step more than 3x slower than idle.
On a machine other people use, "idle" is only as idle as they leave it: say so with the figures.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SHAPES = {
    "tiny": ["--preset", "tiny", "--contexts", "64", "--repeats", "41", "--prefill-tokens", "16"],
    "v2-lite": ["--preset", "deepseek-v2-lite", "--contexts", "4096", "--repeats", "15",
                "--prefill-tokens", "64"],
}


def spin(seconds):
    return subprocess.Popen([sys.executable, "-c",
                             f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"])


def run(cli, shape, threads, policy, limit):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if policy.startswith("spin:"):  # libgomp's bounded spin: N iterations, then sleep
        env["GOMP_SPINCOUNT"] = policy[5:]
    elif policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "b.json")
        args = [cli, "bench", *SHAPES[shape], "--variants", "mla", "--threads", str(threads), "--json", out]
        subprocess.run(args, check=True, capture_output=True, text=True, env=env, timeout=limit)
        point = json.load(open(out))["variants"][0]["points"][0]
    return point["decode_seconds_per_token"], point.get("decode_seconds_max", point["decode_seconds_per_token"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "..", "build", "mla"))
    ap.add_argument("--shapes", default="tiny,v2-lite")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--competitors", type=int, default=1)
    ap.add_argument("--wait-policies", default="default",
                    help="OMP_WAIT_POLICY values (active, passive) or spin:N (GOMP_SPINCOUNT=N) to "
                         "try; default: neither set, i.e. what mla sets itself")
    ap.add_argument("--limit", type=float, default=120.0, help="seconds per run at most")
    a = ap.parse_args()
    rows = []
    for shape in a.shapes.split(","):
        for threads in [int(t) for t in a.threads.split(",")]:
            for policy in a.wait_policies.split(","):
                idle = run(a.cli, shape, threads, policy, a.limit)
                busy = [spin(a.limit) for _ in range(a.competitors)]
                try:
                    time.sleep(0.2)  # let the competitors get going
                    loaded = run(a.cli, shape, threads, policy, a.limit)
                finally:
                    for p in busy:
                        p.kill()
                        p.wait()
                rows.append((shape, threads, policy, idle, loaded))
    print(f"competitors: {a.competitors} busy process(es); times in ms per decode step (median / slowest)")
    print(f"{'shape':8} {'thr':>3} {'wait policy':12} {'idle':>17} {'loaded':>17} {'slowdown':>9} {'slowest/idle':>12}")
    for shape, threads, policy, idle, loaded in rows:
        print(f"{shape:8} {threads:3d} {policy:12} {idle[0]*1e3:8.3f} / {idle[1]*1e3:6.3f} "
              f"{loaded[0]*1e3:8.3f} / {loaded[1]*1e3:6.3f} {loaded[0]/idle[0]:8.2f}x {loaded[1]/idle[0]:11.2f}x")


if __name__ == "__main__":
    main()
