"""`mla bench --variants mla,mla-sparse`: DSA runs inside `mla bench`, the JSON
carries its indexer bytes, the prefill-chunk rate and the speed-up against dense absorbed MLA
(consistent with the timings it reports), and bad sparse options are refused."""
import json
import subprocess

import pytest

from test_bench import cli


def run(*args):
    return subprocess.run([cli(), "bench", *args], capture_output=True, text=True, timeout=300)


def test_sparse_variant_speedup_and_json(tmp_path):
    out = str(tmp_path / "s.json")
    r = run("--preset", "tiny", "--contexts", "100,300", "--threads", "1", "--repeats", "3",
            "--variants", "mla,mla-sparse", "--sparse-topk", "64", "--prefill-chunk", "8",
            "--page-size", "16", "--json", out)
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    assert data["sparse_top_k"] == 64 and data["prefill_chunk"] == 8
    by_name = {v["name"]: v for v in data["variants"]}
    assert by_name["mla-sparse"]["index_bytes_per_token"] == 128 * 4  # one f32 key of 128 per token
    assert "index_bytes_per_token" not in by_name["mla"]
    assert by_name["mla-sparse"]["cache_bytes_per_token"] == by_name["mla"]["cache_bytes_per_token"]
    speedups = data["sparse_speedup"]
    assert [s["context"] for s in speedups] == [100, 300]
    for s, dense, sparse in zip(speedups, by_name["mla"]["points"], by_name["mla-sparse"]["points"]):
        assert s["top_k"] == 64
        assert s["decode"] == pytest.approx(dense["decode_seconds_per_token"] / sparse["decode_seconds_per_token"])
        assert s["prefill_chunk"] == pytest.approx(sparse["chunk_tokens_per_second"] / dense["chunk_tokens_per_second"])
        # Pool pages cover the context, the warm-up, the repeats and the chunk.
        tokens = s["context"] + 1 + 3 + 8
        assert sparse["cache_bytes"] == -(-tokens // 16) * 16 * 160
    assert "mla-sparse (k=64) vs mla at context 300: decode" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--sparse-topk", "0"], "--sparse-topk: must be at least 1, got 0"),
    (["--prefill-chunk", "-1"], "--prefill-chunk: must be between 0 and 65536, got -1"),
    (["--variants", "mla-sparce"], "--variants: unknown variant 'mla-sparce' (use mla, mla-naive, mla-sparse, mha, gqa<N>, mqa)"),
])
def test_bad_sparse_options(args, message):
    r = run("--preset", "tiny", "--contexts", "64", *args)
    assert r.returncode == 2
    assert r.stderr == "mla: error: " + message + "\n"
