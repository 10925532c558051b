"""A layer saved from Python loads back identically, and the C++ CLI (`mla attention`) run on
the saved checkpoint gives exactly the Python output, for every seed preset and both paths."""
import os
import subprocess

import numpy as np
import pytest

import mla
import safetensors_io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli():
    return os.environ.get("MLA_CLI", os.path.join(ROOT, "build", "mla"))


PRESETS = {
    "000": lambda: mla.multiheadlatentattention(48, 40, 24, 4, 0.1, 32, seed=1),
    "001": lambda: mla.MLA(mla.MLAConfig(64, 4, 16, 32, 8, 32, use_bias=True), seed=2),
    "002": lambda: mla.DeepSeekV3MLA(mla.ModelArgs(dim=64, n_heads=4, q_lora_rank=24,
                                                   kv_lora_rank=32, qk_nope_head_dim=16,
                                                   qk_rope_head_dim=8, v_head_dim=12,
                                                   max_seq_len=64, original_seq_len=16), seed=3),
    "003": lambda: mla.LatentAttention(64, 4, 0.25, seed=4),
    "004": lambda: mla.RopelessMLA(64, 4, 16, seed=5),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_save_load_and_cli_agree(name, tmp_path):
    layer = PRESETS[name]()
    folder = tmp_path / "ckpt"
    layer.save(folder)
    loaded = mla.Layer.load(folder)
    assert loaded.weight_names() == layer.weight_names()
    for k, v in layer.weights.items():
        assert np.array_equal(loaded.weights[k], v), k
    x = np.random.default_rng(0).standard_normal((2, 9, layer.config.hidden_size)).astype(np.float32)
    safetensors_io.write(str(tmp_path / "x.safetensors"), {"x": x})
    for path in ("absorbed", "naive"):
        y_py = mla.Layer.__call__(loaded, x, path=path)
        assert np.array_equal(y_py, mla.Layer.__call__(layer, x, path=path))
        out = str(tmp_path / f"y_{path}.safetensors")
        run = subprocess.run([cli(), "attention", "--model", str(folder), "--layer", "0", "--input",
                              str(tmp_path / "x.safetensors"), "--output", out, "--path", path],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        y_cli = safetensors_io.read(out)["y"]
        assert y_cli.shape == y_py.shape
        assert np.array_equal(y_cli.astype(np.float32), y_py), f"{name} {path}"


def test_bf16_checkpoint_round_trip(tmp_path):
    layer = mla.Layer(mla.Config.preset("tiny"), seed=3)
    layer.save(tmp_path, dtype="bf16")
    loaded = mla.Layer.load(tmp_path)
    w = layer.weights["o_proj.weight"]
    assert np.abs(loaded.weights["o_proj.weight"] - w).max() <= np.abs(w).max() * 2.0 ** -8
