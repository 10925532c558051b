"""`mla bench`: the JSON contract (field names scripts rely on), the PNG plot, progress on
stderr, the table on stdout, and errors for bad options."""
import json
import os
import subprocess

import pytest


from mla_cli import cli  # noqa: E402


def run(*args):
    return subprocess.run([cli(), "bench", *args], capture_output=True, text=True, timeout=300)


def test_json_plot_and_table(tmp_path):
    out, png = str(tmp_path / "b.json"), str(tmp_path / "b.png")
    r = run("--preset", "tiny", "--contexts", "64,200", "--batch", "2", "--threads", "1", "--repeats", "3",
            "--variants", "mla,mla-naive,mha,gqa2,mqa", "--json", out, "--plot", png, "--page-size", "16")
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    assert [v["name"] for v in data["variants"]] == ["mla", "mla-naive", "mha", "gqa2", "mqa"]
    # tiny: R + Dr = 40, H (Dn + Dr + Dv) = 4 * 40 = 160, MHA 2 * 4 * 16 = 128, GQA-2 64, MQA 32 numbers.
    widths = {v["name"]: v["cache_bytes_per_token"] for v in data["variants"]}
    assert widths == {"mla": 160, "mla-naive": 640, "mha": 512, "gqa2": 256, "mqa": 128}
    for v in data["variants"]:
        assert [p["context"] for p in v["points"]] == [64, 200]
        for p in v["points"]:
            assert p["batch"] == 2
            assert p["decode_seconds_per_token"] > 0
            assert p["prefill_tokens_per_second"] > 0
            # Exact accounting: whole pages of 16 tokens for context + warm-up + repeats per sequence.
            tokens = p["context"] + 1 + 3
            assert p["cache_bytes"] == 2 * -(-tokens // 16) * 16 * v["cache_bytes_per_token"]
    # gflops counts mla-math.md's FLOPs of the decode step (the batch of 2, each token seeing
    # context + 1 keys); percent_of_peak divides by the f32 FMA peak measured in the same run.
    d, h, dq, dc, dn, dr, dv = 64, 4, 32, 32, 16, 8, 16  # the tiny preset
    proj = 2 * d * dq + 2 * dq * h * (dn + dr) + 2 * d * (dc + dr) + 2 * h * dv * d
    per_token = {"mla": proj + 2 * h * dn * dc + 2 * h * dc * dv, "mla-naive": proj + 2 * h * dc * (dn + dv)}
    per_key = {"mla": h * (2 * (dc + dr) + 2 * dc), "mla-naive": h * (2 * (dn + dr) + 2 * dv)}
    for g, name in [(4, "mha"), (2, "gqa2"), (1, "mqa")]:
        per_token[name] = 2 * d * (h + 2 * g) * dv + 2 * h * dv * d
        per_key[name] = h * 4 * dv
    peak = data["peak_gflops"]["f32_fma"]
    assert peak > 0 and data["peak_gflops"]["reference"] == peak
    for v in data["variants"]:
        for p in v["points"]:
            flops = 2 * (per_token[v["name"]] + (p["context"] + 1) * per_key[v["name"]])
            assert p["gflops"] == pytest.approx(flops / p["decode_seconds_per_token"] * 1e-9, rel=1e-9)
            assert p["percent_of_peak"] == pytest.approx(100 * p["gflops"] / peak, rel=1e-9)
            # Same definition for prefill (a bound like < 100 flaked: the peak is measured on a
            # loaded machine too).
            assert p["prefill_percent_of_peak"] > 0
            assert p["prefill_percent_of_peak"] == pytest.approx(
                100 * p["prefill_gflops"] / peak, rel=1e-9)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "[10/10]" in r.stderr  # progress
    assert "decode ms/step" in r.stdout


@pytest.mark.parametrize("args,word", [
    (["--variants", "mla,flash"], "flash"),
    (["--variants", "gqa3"], "gqa3"),
    (["--contexts", "10,abc"], "abc"),
    (["--contexts", "0"], "--contexts"),
    (["--dtype", "f64"], "f64"),
    (["--weight-dtype", "f16"], "--weight-dtype"),
    (["--page-size", "0"], "page size"),
    (["--batch", "0"], "--batch"),
    (["--preset", "gpt"], "gpt"),
    (["--page-size", "300"], "page size"),
    (["--model", "/nonexistent"], "/nonexistent"),
])
def test_bad_options(args, word):
    base = {"--preset": "tiny", "--contexts": "16", "--repeats": "1", "--variants": "mla"}
    base.update(dict(zip(args[::2], args[1::2])))
    r = run(*[item for pair in base.items() for item in pair])
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and word.lower() in lines[0].lower(), lines


def test_bf16_cache_halves_the_bytes(tmp_path):
    out = str(tmp_path / "b.json")
    r = run("--preset", "tiny", "--contexts", "32", "--repeats", "1", "--variants", "mla,mqa", "--dtype", "bf16",
            "--json", out)
    assert r.returncode == 0, r.stderr
    widths = {v["name"]: v["cache_bytes_per_token"] for v in json.load(open(out))["variants"]}
    assert widths == {"mla": 80, "mqa": 64}


def test_quantized_caches_report_their_row_bytes(tmp_path):
    out = str(tmp_path / "q.json")
    for dtype in ("fp8", "int8"):
        r = run("--preset", "tiny", "--contexts", "32", "--repeats", "1", "--variants", "mla", "--cache-dtype", dtype,
                "--json", out)
        assert r.returncode == 0, r.stderr
        data = json.load(open(out))
        # tiny: R = 32 codes + one float32 scale + Dr = 8 bf16 numbers (DeepSeek's shape: 656).
        assert data["cache_dtype"] == dtype and data["variants"][0]["cache_bytes_per_token"] == 32 + 4 + 16
        assert data["variants"][0]["points"][0]["decode_seconds_per_token"] > 0
        assert data["cpu_kernels"]["kernels"]["latent-attention-f32-cache"]["chosen"]
        assert data["cpu_kernels"]["amx"] and data["cpu_kernels"]["onednn_isa"]
    r = run("--preset", "tiny", "--contexts", "32", "--repeats", "1", "--variants", "mla,mqa", "--dtype", "fp8")
    assert r.returncode == 2
    assert r.stderr.strip().endswith("--dtype fp8: only the mla variant (dense absorbed) reads a quantized cache, "
                                     "not mqa (use --variants mla)")


def test_bf16_weights_halve_the_projection_bytes(tmp_path):
    out = str(tmp_path / "w.json")
    sizes = {}
    for wd in ("f32", "bf16"):
        r = run("--preset", "tiny", "--contexts", "32", "--threads", "1", "--repeats", "1", "--variants", "mla,mqa",
                "--weight-dtype", wd, "--json", out)
        assert r.returncode == 0, r.stderr
        data = json.load(open(out))
        assert data["weight_dtype"] == wd and data["read_bandwidth_gb_per_s"] > 0
        sizes[wd] = {v["name"]: (v["weight_bytes"], v["weight_dtype"]) for v in data["variants"]}
    # tiny: projections q_a 32x64 + q_b 96x32 + kv_a 40x64 + o 64x64 = 11776 numbers; kv_b 128x32 and
    # the norms (32 + 32) = 4160 numbers stay f32. MQA (64x64 q, 2 x 16x64 k/v, 64x64 o) stays f32.
    assert sizes["f32"] == {"mla": (4 * (11776 + 4160), "F32"), "mqa": (4 * 10240, "F32")}
    assert sizes["bf16"] == {"mla": (2 * 11776 + 4 * 4160, "BF16"), "mqa": (4 * 10240, "F32")}
