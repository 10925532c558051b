"""bench/bench_sparse (the attention alone, dense absorbed against DSA's indexer + sparse
attention): its JSON is consistent with the timings it reports, and bad options are refused with
one line on stderr and exit code 2."""
import json
import os
import subprocess

import pytest


def program():
    path = os.environ.get("MLA_BENCH_SPARSE")
    if not path:
        pytest.fail("MLA_BENCH_SPARSE is not set: run through ctest, or export MLA_BENCH_SPARSE=build/bench/bench_sparse")
    return path


def test_bench_sparse_attention_alone(tmp_path):
    out = str(tmp_path / "a.json")
    r = subprocess.run([program(), "--preset", "tiny", "--contexts", "300,1000", "--top-k", "64",
                        "--chunk", "4", "--repeats", "1", "--threads", "1", "--json", out],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    assert data["top_k"] == 64 and data["index_heads"] == 64 and data["index_head_dim"] == 128
    assert [(p["context"], p["new_tokens"]) for p in data["points"]] == [(300, 1), (300, 4), (1000, 1), (1000, 4)]
    for p in data["points"]:
        assert p["speedup_attention"] == pytest.approx(p["dense_seconds"] / p["sparse_attention_seconds"])
        assert p["speedup_with_indexer"] == pytest.approx(
            p["dense_seconds"] / (p["sparse_attention_seconds"] + p["indexer_seconds"]))
    assert "speed-up attn" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--top-k", "0"], "--top-k: must be between 1 and 1048576, got 0"),
    (["--contexts", "10,x"], "--contexts: 'x' is not a context length between 1 and 1048576"),
    (["--chunk", "5000"], "--chunk: must be between 0 and 4096, got 5000"),
])
def test_bench_sparse_bad_options(args, message):
    r = subprocess.run([program(), "--preset", "tiny", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr == "bench_sparse: error: " + message + "\n"
