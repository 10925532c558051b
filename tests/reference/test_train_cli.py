"""`mla train` and `mla generate` from the outside: the loss falls on the built-in task, metrics
are JSON lines, --resume continues byte for byte like an uninterrupted run, greedy generation
through the latent cache equals recomputation, text files train with a held-out split, and bad
input gives one stderr line and exit code 2."""
import json
import os
import subprocess

import pytest

ENV = dict(os.environ, OMP_WAIT_POLICY="passive")  # no spinning when ctest runs tests side by side


from mla_cli import cli  # noqa: E402


def run(*args, check=True):
    r = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True, timeout=300, env=ENV)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def assert_one_line_error(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1, r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


TINY = ["--d-model", 64, "--layers", 2, "--heads", 4, "--seq", 32, "--batch", 16]


def test_loss_falls_and_greedy_generation_copies(tmp_path):
    ck, m, png = tmp_path / "ck", tmp_path / "m.jsonl", tmp_path / "loss.png"
    r = run("train", *TINY, "--steps", 300, "--weight-decay", 0, "--eval-every", 100, "--checkpoint-dir", ck,
            "--metrics", m, "--plot", png)
    assert "step 300/300" in r.stdout and "tok/s" in r.stdout and "left" in r.stdout
    rows = metrics(m)
    assert [row["step"] for row in rows] == list(range(1, 301))
    for row in rows:
        assert {"step", "loss", "lr", "tokens_per_second"} <= row.keys()
    assert [row["step"] for row in rows if "val_loss" in row] == [100, 200, 300]
    assert rows[0]["loss"] > 5.0 and rows[-1]["val_loss"] < 0.5, (rows[0]["loss"], rows[-1]["val_loss"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    prompt = "qwertyuiopasdfgh|"
    cached = run("generate", "--checkpoint", ck, "--prompt", prompt, "--max-tokens", 16, "--temperature", 0).stdout
    recomputed = run("generate", "--checkpoint", ck, "--prompt", prompt, "--max-tokens", 16, "--temperature", 0,
                     "--no-cache").stdout
    assert cached == recomputed
    assert cached.startswith(prompt)
    copied = cached[len(prompt):len(prompt) + 16]
    assert sum(a == b for a, b in zip(copied, prompt)) >= 12, cached  # the model learned to copy

    sampled = ["generate", "--checkpoint", ck, "--prompt", prompt, "--max-tokens", 20, "--temperature", 0.9,
               "--top-k", 8, "--seed", 5]
    assert run(*sampled).stdout == run(*sampled).stdout


@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_resume_is_byte_identical(tmp_path, attention):
    common = ["train", *TINY, "--attention", attention, "--dropout", 0.1, "--eval-every", 10]
    a, b = tmp_path / "a", tmp_path / "b"
    run(*common, "--steps", 40, "--checkpoint-dir", a, "--checkpoint-every", 20, "--metrics", tmp_path / "a.jsonl")
    r = run("train", "--resume", a / "step_00000020.safetensors", "--checkpoint-dir", b, "--metrics",
            tmp_path / "b.jsonl")
    assert "resuming at step 20" in r.stdout
    assert (a / "step_00000040.safetensors").read_bytes() == (b / "step_00000040.safetensors").read_bytes()
    key = ("step", "loss", "lr", "grad_norm", "val_loss")
    tail = [{k: row.get(k) for k in key} for row in metrics(tmp_path / "a.jsonl")[20:]]
    assert tail == [{k: row.get(k) for k in key} for row in metrics(tmp_path / "b.jsonl")]
    # Extending a finished run: the folder resolves to its latest checkpoint.
    r = run("train", "--resume", b, "--steps", 45, "--checkpoint-dir", b)
    assert (b / "step_00000045.safetensors").exists()


def test_text_file_with_validation_split(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("".join(f"To be, or not to be, line {i}: that is the question.\n" for i in range(300)))
    m = tmp_path / "m.jsonl"
    r = run("train", "--attention", "mqa", "--d-model", 32, "--heads", 2, "--seq", 32, "--batch", 8, "--steps", 30,
            "--eval-every", 15, "--data", text, "--metrics", m, "--ffn", "gelu", "--norm", "layernorm")
    assert "validation bytes" in r.stdout
    rows = metrics(m)
    assert rows[-1]["val_loss"] < rows[0]["loss"]


def test_config_file(tmp_path):
    cfg = tmp_path / "model.json"
    cfg.write_text(json.dumps({"attention": "mla", "d_model": 32, "num_layers": 1, "heads": 2, "max_seq_len": 16,
                               "mla": {"num_attention_heads": 2, "q_lora_rank": 8, "kv_lora_rank": 12,
                                       "qk_nope_head_dim": 8, "qk_rope_head_dim": 0, "v_head_dim": 8}}))
    r = run("train", "--config", cfg, "--steps", 3, "--batch", 2)
    assert "mla attention, 1 layers, d_model 32" in r.stdout
    assert_one_line_error(run("train", "--config", cfg, "--d-model", 64, check=False), "--d-model", "--config")


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    assert_one_line_error(run("generate", "--checkpoint", garbage, "--prompt", "x", check=False), "garbage.safetensors")
    assert_one_line_error(run("generate", "--checkpoint", tmp_path / "nope", "--prompt", "x", check=False),
                          "no such checkpoint")
    assert_one_line_error(run("train", "--resume", tmp_path, check=False), "no step_*.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    foreign.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    assert_one_line_error(run("generate", "--checkpoint", foreign, "--prompt", "x", check=False),
                          "not an mla.cpp training checkpoint")
    ck = tmp_path / "ck"
    run("train", *TINY, "--steps", 2, "--checkpoint-dir", ck)
    assert_one_line_error(run("train", "--resume", ck, "--d-model", 32, check=False), "--d-model", "--resume")
    assert_one_line_error(run("generate", "--checkpoint", ck, "--prompt", "", check=False), "--prompt")
    assert_one_line_error(run("train", "--data", tmp_path / "missing.txt", check=False), "missing.txt")
    short = tmp_path / "short.txt"
    short.write_text("tiny")
    assert_one_line_error(run("train", "--data", short, check=False), "short.txt", "too few")
    assert_one_line_error(run("train", "--attention", "xla", check=False), "--attention")
    assert_one_line_error(run("train", "--preset", "huge", check=False), "unknown model preset 'huge'")


def test_output_files_may_name_new_folders(tmp_path):
    m, png = tmp_path / "a" / "m.jsonl", tmp_path / "b" / "c" / "loss.png"
    run("train", *TINY, "--steps", 2, "--metrics", m, "--plot", png)
    assert len(metrics(m)) == 2 and png.read_bytes()[:4] == b"\x89PNG"
