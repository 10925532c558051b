"""Our `mla attention` CLI against the independent PyTorch reference (float64), every case,
both paths, with and without --prefill. Also the reference against itself (naive, absorbed,
step-by-step decode) and its RoPE/YaRN frequencies against the closed form."""
import json
import math
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

TOLERANCE = 1e-5  # max |y - y_ref| / max |y_ref|, float32 against float64
RESULTS = {}


from mla_cli import cli  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cases"))


def rel_error(y, ref):
    return float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))


@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_cli_matches_reference(name, root):
    folder, layer, x, y_ref, seq = cases.write_case(name, root)
    for path in ("naive", "absorbed"):
        for prefill in (None, seq // 2, 1, seq):
            case_dir = os.path.dirname(folder)
            out = os.path.join(case_dir, f"y_{path}_{prefill}.safetensors")
            args = [cli(), "attention", "--model", folder, "--layer", str(layer), "--input",
                    os.path.join(case_dir, "x.safetensors"), "--output", out, "--path", path]
            if prefill is not None:
                args += ["--prefill", str(prefill)]
            run = subprocess.run(args, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            y = safetensors_io.read(out)["y"]
            assert y.shape == y_ref.shape
            err = rel_error(y, y_ref)
            RESULTS[f"{name}/{path}/prefill={prefill}"] = err
            assert err <= TOLERANCE, f"{name} {path} prefill={prefill}: relative error {err:.3e}"


def test_report_errors():
    """Prints the measured errors (run pytest with -s to see them) and keeps them in a file."""
    if RESULTS:
        worst = max(RESULTS.values())
        print(f"\nworst relative error over {len(RESULTS)} runs: {worst:.3e}")
        for key, err in sorted(RESULTS.items()):
            print(f"  {key}: {err:.3e}")
        out = os.environ.get("MLA_REFERENCE_REPORT")
        if out:
            with open(out, "w") as f:
                json.dump(RESULTS, f, indent=1)


@pytest.mark.parametrize("name", ["q_lora", "no_q_lora", "dv_ne_dnope", "yarn", "odd_heads"])
def test_reference_forms_agree(name, tmp_path):
    folder, layer, x, y_ref, seq = cases.write_case(name, str(tmp_path))
    cfg = mla_reference.Config.from_json(json.load(open(os.path.join(folder, "config.json"))))
    weights = {}
    for f in os.listdir(folder):
        if f.startswith("model") and f.endswith(".safetensors"):
            weights.update(safetensors_io.read(os.path.join(folder, f)))
    ref = mla_reference.Layer(cfg, weights, layer)
    xt = torch.tensor(x)
    naive = ref.naive(xt)
    absorbed, _ = ref.absorbed(xt)
    steps = ref.decode_steps(xt, prefill=3)
    assert torch.allclose(naive, absorbed, rtol=0, atol=1e-10 * naive.abs().max())
    assert torch.allclose(naive, steps, rtol=0, atol=1e-10 * naive.abs().max())
    # Relative positions only: starting at 100 changes nothing.
    shifted = ref.naive(xt, start=100)
    assert torch.allclose(naive, shifted, rtol=0, atol=1e-5 * naive.abs().max())


def test_yarn_frequencies_closed_form():
    cfg = mla_reference.Config.from_json(dict(cases.BASE, qk_rope_head_dim=64, max_position_embeddings=163840,
                                              rope_scaling={"type": "yarn", "factor": 40, "beta_fast": 32,
                                                            "beta_slow": 1, "original_max_position_embeddings": 4096}))
    f = mla_reference.yarn_frequencies(cfg).double()
    # DeepSeek-V3 numbers: low = floor(10.47) = 10, high = ceil(22.51) = 23.
    for k in range(32):
        base = 10000.0 ** (-2 * k / 64)
        ramp = min(max((k - 10) / 13, 0), 1)
        assert math.isclose(f[k].item(), base / 40 * ramp + base * (1 - ramp), rel_tol=1e-6)
    assert math.isclose(cfg.softmax_scale(), (16 + 64) ** -0.5, rel_tol=1e-12)  # mscale_all_dim absent -> m = 1
