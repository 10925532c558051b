"""bf16 storage (weights and cache) against our own float32 path, bounded by what PyTorch loses
when it runs DeepSeek's formulation in bf16 against float32 on the same weights and inputs.
Issue #4's contract: our bf16 error is at most twice PyTorch's."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import mla_reference  # noqa: E402
import safetensors_io  # noqa: E402

ERRORS = {}


from mla_cli import cli  # noqa: E402


def rel_error(y, ref):
    return float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))


def run_cli(folder, layer, x_path, out, path, prefill, *extra):
    args = [cli(), "attention", "--model", folder, "--layer", str(layer), "--input", x_path, "--output", out,
            "--path", path, "--prefill", str(prefill), *extra]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return safetensors_io.read(out)["y"].astype(np.float64)


def torch_output(folder, layer, x, path, prefill, dtype):
    cfg = mla_reference.Config.from_json(json.load(open(os.path.join(folder, "config.json"))))
    weights = {}
    for f in os.listdir(folder):
        if f.endswith(".safetensors"):
            weights.update(safetensors_io.read(os.path.join(folder, f)))
    ref = mla_reference.Layer(cfg, weights, layer, dtype=dtype)
    xt = torch.tensor(x).to(dtype)
    y = ref.decode_steps(xt, prefill) if path == "absorbed" else ref.naive(xt)
    return y.double().numpy()


@pytest.mark.parametrize("path", ["absorbed", "naive"])
@pytest.mark.parametrize("name", ["q_lora", "no_q_lora", "yarn", "batch4"])
def test_bf16_error_at_most_twice_torch(name, path, tmp_path):
    folder, layer, x, _, seq = cases.write_case(name, str(tmp_path))
    x_path = os.path.join(os.path.dirname(folder), "x.safetensors")
    prefill = seq // 2 if path == "absorbed" else seq
    y32 = run_cli(folder, layer, x_path, str(tmp_path / "y32.safetensors"), path, prefill)
    y16 = run_cli(folder, layer, x_path, str(tmp_path / "y16.safetensors"), path, prefill,
                  "--weight-dtype", "bf16", "--cache-dtype", "bf16")
    ours = rel_error(y16, y32)
    theirs = rel_error(torch_output(folder, layer, x, path, prefill, torch.bfloat16),
                       torch_output(folder, layer, x, path, prefill, torch.float32))
    ERRORS[f"{name}/{path}"] = (ours, theirs)
    # bf16 really is in use (float32 alone would be ~1e-7), and within the contract.
    assert ours > 1e-4, f"{name} {path}: bf16 error {ours:.2e} is float32-sized: bf16 not in use?"
    assert ours <= 2 * theirs, f"{name} {path}: ours {ours:.3e} > 2 x torch's {theirs:.3e}"


def test_bf16_weights_only_and_cache_only_are_each_bf16(tmp_path):
    """Each option on its own changes the result (so each is honoured), by a bf16-sized amount."""
    folder, layer, x, _, seq = cases.write_case("q_lora", str(tmp_path))
    x_path = os.path.join(os.path.dirname(folder), "x.safetensors")
    y32 = run_cli(folder, layer, x_path, str(tmp_path / "a.safetensors"), "absorbed", 4)
    for extra in (["--weight-dtype", "bf16"], ["--cache-dtype", "bf16"]):
        y = run_cli(folder, layer, x_path, str(tmp_path / "b.safetensors"), "absorbed", 4, *extra)
        assert 1e-5 < rel_error(y, y32) < 3e-2, extra


def test_report_errors():
    """Prints the measured errors (pytest -s)."""
    for key, (ours, theirs) in sorted(ERRORS.items()):
        print(f"  {key}: ours {ours:.3e}, torch {theirs:.3e}, ratio {ours / theirs:.2f}")
