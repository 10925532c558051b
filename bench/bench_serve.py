#!/usr/bin/env python3
"""Load test of `mla serve` over loopback: for 1, 4, 16 and 64 concurrent clients, a fixed
number of streamed chat requests each (bounded in count and time), reporting aggregate
generated tokens/s, time to first token and inter-token latency percentiles, failures, and the
server's resident memory against its cache budget. The model is a small random-weight
DeepSeek-V3-shaped checkpoint with a byte-level tokenizer (tests/serve/serving_model.py), or
--model DIR.

  bench/bench_serve.py --cli build/mla [--clients 1,4,16,64] [--requests 64] [--max-tokens 32]
                       [--max-batch 16] [--threads 2] [--json out.json]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "serve"))
import serving_model  # noqa: E402


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def one_request(url, i, max_tokens, deadline):
    body = {"messages": [{"role": "system", "content": "You answer briefly."},
                         {"role": "user", "content": f"Question {i}: tell me about the sea"}],
            "stream": True, "max_tokens": max_tokens, "temperature": 0.8, "seed": i,
            "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    times, usage = [], None
    with requests.post(url + "/v1/chat/completions", json=body, stream=True,
                       timeout=max(1.0, deadline - time.time())) as r:
        if r.status_code != 200:
            return {"ok": False, "status": r.status_code}
        for raw in r.iter_lines(chunk_size=1):
            if not raw.startswith(b"data: ") or raw == b"data: [DONE]":
                continue
            event = json.loads(raw[6:])
            if event.get("usage"):
                usage = event["usage"]
            if event["choices"] and event["choices"][0]["delta"].get("content"):
                times.append(time.perf_counter())
    tokens = usage["completion_tokens"] if usage else len(times)
    return {"ok": True, "ttft": (times[0] - start) if times else None,
            "itl": [b - a for a, b in zip(times, times[1:])], "tokens": tokens,
            "seconds": time.perf_counter() - start}


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def metric(url, name):
    for line in requests.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def run_level(url, clients, n_requests, max_tokens, time_limit):
    deadline = time.time() + time_limit
    results, lock, next_i = [], threading.Lock(), [0]

    def worker():
        while time.time() < deadline:
            with lock:
                if next_i[0] >= n_requests:
                    return
                i = next_i[0]
                next_i[0] += 1
            try:
                r = one_request(url, i, max_tokens, deadline)
            except requests.RequestException as e:
                r = {"ok": False, "status": str(e)}
            with lock:
                results.append(r)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    peak_batch = 0
    while any(t.is_alive() for t in threads):
        peak_batch = max(peak_batch, metric(url, "mla_batch_size"))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    ok = [r for r in results if r["ok"]]
    ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
    itl = [x for r in ok for x in r["itl"]]
    tokens = sum(r["tokens"] for r in ok)
    return {"clients": clients, "requests": len(results), "failed": len(results) - len(ok),
            "tokens": tokens, "seconds": wall, "tokens_per_s": tokens / wall,
            "ttft_p50_ms": 1e3 * percentile(ttft, 50), "ttft_p90_ms": 1e3 * percentile(ttft, 90),
            "ttft_p99_ms": 1e3 * percentile(ttft, 99), "itl_p50_ms": 1e3 * percentile(itl, 50),
            "itl_p90_ms": 1e3 * percentile(itl, 90), "itl_p99_ms": 1e3 * percentile(itl, 99),
            "peak_batch": int(peak_batch)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", default=os.path.join(HERE, "..", "build", "mla"))
    ap.add_argument("--model", help="checkpoint folder (default: a small random model)")
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--cache-tokens", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256, help="width of the random model")
    ap.add_argument("--time-limit", type=float, default=120, help="seconds per level at most")
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="mla-bench-serve-")
    model = args.model or serving_model.write_model(
        os.path.join(tmp.name, "model"), hidden_size=args.hidden)[0]
    server = serving_model.Server(args.cli, model, "--threads", str(args.threads), "--max-batch",
                                  str(args.max_batch), "--cache-tokens", str(args.cache_tokens),
                                  "--max-queue", "256")
    try:
        levels = []
        rss_start = rss_bytes(server.proc.pid)
        for clients in [int(c) for c in args.clients.split(",")]:
            level = run_level(server.url, clients, args.requests, args.max_tokens,
                              args.time_limit)
            level["rss_mb"] = rss_bytes(server.proc.pid) / 2**20
            levels.append(level)
            print(f"{clients:3d} clients: {level['tokens_per_s']:8.1f} tok/s, "
                  f"ttft p50 {level['ttft_p50_ms']:7.1f} ms p99 {level['ttft_p99_ms']:7.1f}, "
                  f"itl p50 {level['itl_p50_ms']:6.1f} ms p99 {level['itl_p99_ms']:6.1f}, "
                  f"batch {level['peak_batch']:2d}, failed {level['failed']}, "
                  f"rss {level['rss_mb']:.0f} MB", file=sys.stderr)
        pages = metric(server.url, "mla_cache_pages_used") + metric(server.url,
                                                                    "mla_cache_pages_free")
        out = {"model": model if args.model else f"random v3-style, hidden {args.hidden}",
               "max_batch": args.max_batch, "cache_tokens": args.cache_tokens,
               "cache_pages": pages, "threads": args.threads, "max_tokens": args.max_tokens,
               "rss_start_mb": rss_start / 2**20, "levels": levels}
        print(f"| clients | requests | failed | tokens/s | TTFT p50 / p90 / p99 ms | "
              f"ITL p50 / p90 / p99 ms | peak batch | RSS MB |")
        print("|---|---|---|---|---|---|---|---|")
        for lv in levels:
            print(f"| {lv['clients']} | {lv['requests']} | {lv['failed']} | "
                  f"{lv['tokens_per_s']:.1f} | {lv['ttft_p50_ms']:.1f} / {lv['ttft_p90_ms']:.1f} "
                  f"/ {lv['ttft_p99_ms']:.1f} | {lv['itl_p50_ms']:.1f} / {lv['itl_p90_ms']:.1f} / "
                  f"{lv['itl_p99_ms']:.1f} | {lv['peak_batch']} | {lv['rss_mb']:.0f} |")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        server.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
