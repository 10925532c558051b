"""`mla train --sparse` / `--dense-layers`: a sparse MLA model trains, its checkpoint keeps the
pattern, generation and resume use it, and patterns that cannot train are one stderr line with
exit code 2."""
import os
import subprocess

import pytest


from mla_cli import cli  # noqa: E402


def run(*args):
    return subprocess.run([cli(), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_sparse_model_trains_resumes_and_generates(tmp_path):
    ck = tmp_path / "run"
    r = run("train", "--preset", "tiny", "--steps", 4, "--eval-every", 2, "--sparse", "window:size=8,dense-heads=1",
            "--dense-layers", 1, "--checkpoint-dir", ck)
    assert r.returncode == 0, r.stderr
    checkpoint = ck / "step_00000004.safetensors"
    # The model config is stored as JSON text inside the safetensors metadata (quotes escaped).
    header = open(checkpoint, "rb").read(65536).replace(b'\\"', b'"')
    assert b'"sparse": "window:size=8,dense-heads=1"' in header
    assert b'"dense_layers": 1' in header
    r = run("train", "--resume", checkpoint, "--steps", 6, "--checkpoint-dir", ck)
    assert r.returncode == 0, r.stderr
    r = run("generate", "--checkpoint", ck / "step_00000006.safetensors", "--prompt", "abc|", "--max-tokens", 5,
            "--temperature", 0)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args,message", [
    (["--sparse", "dsa"], "lm config: sparse: dsa is not trainable here (its indexer learns from its own loss); "
                          "use window, block or topk"),
    (["--sparse", "topk"], None),
    (["--sparse", "window:size"], "--sparse: 'window:size': 'size' is not key=value"),
    (["--attention", "gqa", "--sparse", "topk:k=4"], "lm config: sparse: only the mla attention is sparse"),
    (["--sparse", "topk:k=4", "--dense-layers", 5], "lm config: dense_layers: must be in [0, num_layers = 2], got 5"),
])
def test_bad_sparse_training_options(tmp_path, args, message):
    r = run("train", "--preset", "tiny", "--steps", 1, "--checkpoint-dir", tmp_path / "x", *args)
    if message is None:
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 2
    assert r.stderr == "mla: error: " + message + "\n"
