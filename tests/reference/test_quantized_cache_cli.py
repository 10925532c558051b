"""`mla attention --cache-dtype fp8|int8`: the quantized latent cache (656-byte rows for
DeepSeek's shape: e4m3 or int8 with a float32 scale per 128 numbers, rope in bf16) through the
CLI, against the float32 cache on the same weights and inputs. The error bounds are the unit
tests' (tests/unit/test_quantized_cache.cc); here: each option is honoured (the output moves by
a quantization-sized amount, int8 less than fp8) and the naive path refuses them."""
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import safetensors_io  # noqa: E402


from mla_cli import cli  # noqa: E402


def run_cli(folder, layer, x_path, out, path, *extra):
    args = [cli(), "attention", "--model", folder, "--layer", str(layer), "--input", x_path,
            "--output", out, "--path", path, "--prefill", "4", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def rel_error(y, ref):
    return float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))


def test_fp8_and_int8_caches_through_the_cli(tmp_path):
    folder, layer, _, _, _ = cases.write_case("q_lora", str(tmp_path))
    x_path = os.path.join(os.path.dirname(folder), "x.safetensors")
    outs = {}
    for dtype in ("f32", "fp8", "int8"):
        out = str(tmp_path / f"{dtype}.safetensors")
        r = run_cli(folder, layer, x_path, out, "absorbed", "--cache-dtype", dtype)
        assert r.returncode == 0, r.stderr
        outs[dtype] = safetensors_io.read(out)["y"].astype(np.float64)
    fp8, int8 = rel_error(outs["fp8"], outs["f32"]), rel_error(outs["int8"], outs["f32"])
    assert 1e-4 < fp8 < 0.1, fp8
    assert 1e-5 < int8 < 0.03, int8
    assert int8 < fp8, (int8, fp8)


def test_naive_path_refuses_a_quantized_cache(tmp_path):
    folder, layer, _, _, _ = cases.write_case("q_lora", str(tmp_path))
    x_path = os.path.join(os.path.dirname(folder), "x.safetensors")
    r = run_cli(folder, layer, x_path, str(tmp_path / "y.safetensors"), "naive",
                "--cache-dtype", "fp8")
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "F8_E4M3 page pool serves the dense absorbed path only" in lines[0]
