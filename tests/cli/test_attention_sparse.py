"""`mla attention --sparse`: patterns that keep every key give the dense output, the naive and
absorbed paths agree under a real pattern, decode through the cache equals one prefill, DSA reads
the checkpoint's indexer tensors, and bad specs are one stderr line with exit code 2."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import cases  # noqa: E402
import safetensors_io  # noqa: E402


from mla_cli import cli  # noqa: E402


@pytest.fixture()
def case(tmp_path):
    folder, layer, _, _, seq = cases.write_case("q_lora", str(tmp_path))
    return {"model": folder, "layer": layer, "x": os.path.join(str(tmp_path), "q_lora", "x.safetensors"),
            "tmp": str(tmp_path), "seq": seq}


def attention(c, *extra, out="y.safetensors"):
    path = os.path.join(c["tmp"], out)
    r = subprocess.run([cli(), "attention", "--model", c["model"], "--layer", str(c["layer"]), "--input", c["x"],
                        "--output", path, *extra], capture_output=True, text=True, timeout=120)
    return r, path


def output(c, *extra):
    r, path = attention(c, *extra)
    assert r.returncode == 0, r.stderr
    return safetensors_io.read(path)["y"]


def add_indexer(c, heads=2, dim=16):
    """Adds DeepSeek-V3.2 indexer tensors for the layer to the checkpoint and config.json."""
    weights_path = os.path.join(c["model"], "model.safetensors")
    tensors = safetensors_io.read(weights_path)
    rng = np.random.default_rng(3)
    p = f"model.layers.{c['layer']}.self_attn.indexer."
    tensors[p + "wq_b.weight"] = rng.normal(size=(heads * dim, 32)) / np.sqrt(32)
    tensors[p + "wk.weight"] = rng.normal(size=(dim, 64)) / 8
    tensors[p + "k_norm.weight"] = 1 + 0.1 * rng.normal(size=dim)
    tensors[p + "k_norm.bias"] = 0.1 * rng.normal(size=dim)
    tensors[p + "weights_proj.weight"] = rng.normal(size=(heads, 64)) / 8
    safetensors_io.write(weights_path, tensors)
    cfg_path = os.path.join(c["model"], "config.json")
    cfg = json.load(open(cfg_path))
    cfg.update(index_n_heads=heads, index_head_dim=dim, index_topk=2048)
    json.dump(cfg, open(cfg_path, "w"))


def close(a, b):
    return np.max(np.abs(a - b)) <= 2e-5 * np.max(np.abs(b))


def test_patterns_that_keep_every_key_are_dense(case):
    dense = output(case)
    for spec in ["topk:k=1000", "window:size=24", "block:size=4,local=6", "topk:k=2,dense-heads=4"]:
        for path in ["absorbed", "naive"]:
            assert close(output(case, "--sparse", spec, "--path", path), dense), (spec, path)


def test_naive_equals_absorbed_and_decode_equals_prefill(case):
    dense = output(case)
    for spec in ["window:size=3", "block:size=4,local=1,global=1", "topk:k=5,dense-heads=1"]:
        y = output(case, "--sparse", spec)
        assert not close(y, dense), spec
        assert close(output(case, "--sparse", spec, "--path", "naive"), y), spec
        assert close(output(case, "--sparse", spec, "--prefill", "7"), y), spec
        assert close(output(case, "--sparse", spec, "--path", "naive", "--prefill", "7"), y), spec


def test_dsa_reads_the_indexer_and_k_at_least_the_context_is_dense(case):
    r, _ = attention(case, "--sparse", "dsa")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert "missing tensor 'model.layers.0.self_attn.indexer.wq_b.weight'" in r.stderr
    add_indexer(case)
    dense = output(case)
    assert close(output(case, "--sparse", "dsa"), dense)
    y = output(case, "--sparse", "dsa:k=4")
    assert not close(y, dense)
    assert close(output(case, "--sparse", "dsa:k=4", "--path", "naive", "--prefill", "5"), y)


@pytest.mark.parametrize("spec,message", [
    ("ring", "--sparse: 'ring': unknown pattern 'ring' (use dense, window, block, topk or dsa)"),
    ("topk:k=0", "--sparse: k: must be between 1 and 2147483647, got 0"),
    ("window:size=x", "--sparse: 'window:size=x': size: 'x' is not an integer"),
    ("topk:k=3,dense-heads=9", "--sparse: dense-heads: 9 is more than the 4 heads"),
])
def test_bad_specs_are_one_line_exit_2(case, spec, message):
    r, _ = attention(case, "--sparse", spec)
    assert r.returncode == 2
    assert r.stderr == "mla: error: " + message + "\n"
