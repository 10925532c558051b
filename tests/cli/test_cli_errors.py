"""The CLI contract: every bad input gives exactly one line on stderr and exit code 2, never a
crash; the line names the problem. Plus `mla info` and atomic output."""
import json
import os
import shutil
import struct
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
    folder, layer, x, y_ref, seq = cases.write_case("q_lora", str(tmp_path))
    return {"model": folder, "layer": layer, "x": os.path.join(str(tmp_path), "q_lora", "x.safetensors"),
            "out": os.path.join(str(tmp_path), "y.safetensors"), "tmp": str(tmp_path), "seq": seq}


def run(*args):
    return subprocess.run([cli(), *args], capture_output=True, text=True, timeout=60)


def attention(c, **over):
    opts = {"--model": c["model"], "--layer": str(c["layer"]), "--input": c["x"], "--output": c["out"]}
    opts.update({k: v for k, v in over.items() if v is not None})
    args = ["attention"]
    for k, v in opts.items():
        args += [k, v]
    return run(*args)


def assert_error(result, *words):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    assert "terminate called" not in result.stderr and "Sanitizer" not in result.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), f"{word!r} not in {lines[0]!r}"
    return lines[0]


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def edit_config(c, **fields):
    path = os.path.join(c["model"], "config.json")
    cfg = json.load(open(path))
    cfg.update(fields)
    json.dump(cfg, open(path, "w"))


def test_happy_path_and_atomic_output(case):
    r = attention(case)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    leftovers = [f for f in os.listdir(case["tmp"]) if ".tmp." in f]
    assert leftovers == []
    y = safetensors_io.read(case["out"])["y"]
    assert y.shape == (1, case["seq"], 64)


def test_missing_model_dir(case):
    assert_error(attention(case, **{"--model": "/nonexistent/model"}), "/nonexistent/model")


def test_dir_without_config(case):
    os.remove(os.path.join(case["model"], "config.json"))
    assert_error(attention(case), "config.json")


def test_malformed_config(case):
    write_bytes(os.path.join(case["model"], "config.json"), b"{\"hidden_size\": 64,")
    assert_error(attention(case), "config.json", "malformed JSON")


@pytest.mark.parametrize("field,value,word", [
    ("num_attention_heads", 0, "num_attention_heads"),
    ("qk_rope_head_dim", 7, "qk_rope_head_dim"),
    ("rope_scaling", {"type": "dynamic", "factor": 2.0}, "rope_scaling.type"),
    ("hidden_size", "wide", "hidden_size"),
])
def test_invalid_config_field(case, field, value, word):
    edit_config(case, **{field: value})
    assert_error(attention(case), word)


def test_missing_input(case):
    assert_error(attention(case, **{"--input": "/nonexistent/x.safetensors"}), "/nonexistent/x.safetensors")


def test_input_without_x(case):
    safetensors_io.write(case["x"], {"z": np.zeros((1, 2, 64))})
    assert_error(attention(case), "'x'")


@pytest.mark.parametrize("shape,word", [((2, 64), "3 dimensions"), ((1, 4, 63), "hidden"), ((1, 0, 64), "at least 1")])
def test_input_bad_shape(case, shape, word):
    safetensors_io.write(case["x"], {"x": np.zeros(shape)})
    assert_error(attention(case), "'x'", word)


@pytest.mark.parametrize("dtype", ["F64", "I32", "F16"])
def test_input_wrong_dtype(case, dtype):
    safetensors_io.write(case["x"], {"x": np.zeros((1, 3, 64))}, dtype=dtype)
    assert_error(attention(case), "'x'", dtype)


def test_truncated_file(case):
    data = open(case["x"], "rb").read()
    write_bytes(case["x"], data[:-10])
    assert_error(attention(case), "out of range")
    write_bytes(case["x"], data[:5])
    assert_error(attention(case), "truncated")


def test_header_length_past_end(case):
    write_bytes(case["x"], struct.pack("<Q", 10**6) + b"{}")
    assert_error(attention(case), "header length")


def test_overlapping_offsets(case):
    header = {"x": {"dtype": "F32", "shape": [1, 1, 64], "data_offsets": [0, 256]},
              "y": {"dtype": "F32", "shape": [1, 1, 64], "data_offsets": [128, 384]}}
    write_bytes(case["x"], safetensors_io.raw_file(header, b"\0" * 384))
    assert_error(attention(case), "overlap")


def test_out_of_range_offsets(case):
    header = {"x": {"dtype": "F32", "shape": [1, 1, 64], "data_offsets": [0, 256]}}
    write_bytes(case["x"], safetensors_io.raw_file(header, b"\0" * 100))
    assert_error(attention(case), "out of range")


def test_offsets_disagree_with_shape(case):
    header = {"x": {"dtype": "F32", "shape": [1, 1, 64], "data_offsets": [0, 128]}}
    write_bytes(case["x"], safetensors_io.raw_file(header, b"\0" * 256))
    assert_error(attention(case), "data_offsets")


def test_malformed_header_json(case):
    write_bytes(case["x"], safetensors_io.raw_file(b"{\"x\": [", b""))
    assert_error(attention(case), "malformed JSON")


def test_missing_weight(case):
    path = os.path.join(case["model"], "model.safetensors")
    tensors = safetensors_io.read(path)
    del tensors["model.layers.0.self_attn.q_a_proj.weight"]
    safetensors_io.write(path, tensors)
    assert_error(attention(case), "q_a_proj")


def test_weight_wrong_shape(case):
    path = os.path.join(case["model"], "model.safetensors")
    tensors = safetensors_io.read(path)
    tensors["model.layers.0.self_attn.o_proj.weight"] = np.zeros((64, 32))
    safetensors_io.write(path, tensors)
    assert_error(attention(case), "o_proj", "model.safetensors")


def test_layer_not_present(case):
    assert_error(attention(case, **{"--layer": "7"}), "layer 7")


def test_prefill_too_large(case):
    assert_error(attention(case, **{"--prefill": str(case["seq"] + 1)}), "prefill")


def test_prefill_negative(case):
    assert_error(attention(case, **{"--prefill": "-1"}), "prefill")


def test_unknown_option(case):
    assert_error(run("attention", "--model", case["model"], "--layer", "0", "--input", case["x"], "--output",
                     case["out"], "--speed", "fast"), "--speed")


def test_unknown_command():
    assert_error(run("frobnicate"), "frobnicate")


def test_unknown_path(case):
    assert_error(attention(case, **{"--path": "sideways"}), "sideways")


def test_unwritable_output(case):
    assert_error(attention(case, **{"--output": "/nonexistent/dir/y.safetensors"}), "/nonexistent/dir/y.safetensors")


def test_failed_replace_leaves_no_temp_file(case):
    # The output path is a non-empty folder: the final rename fails after the data was written.
    os.makedirs(os.path.join(case["out"], "keep"))
    assert_error(attention(case), case["out"])
    assert os.path.isdir(os.path.join(case["out"], "keep"))
    assert [f for f in os.listdir(case["tmp"]) if ".tmp." in f] == []


def test_info(case):
    r = run("info", "--model", case["model"])
    assert r.returncode == 0, r.stderr
    assert "model.layers.0.self_attn.kv_b_proj.weight" in r.stdout
    assert "MLA latent cache: 40 numbers = 80 bytes" in r.stdout
    assert "MHA (naive) cache: 160 numbers = 320 bytes" in r.stdout


def test_info_errors(case):
    assert_error(run("info", "--model", "/nonexistent"), "/nonexistent")
    shutil.rmtree(case["model"])
    os.makedirs(case["model"])
    json.dump(dict(cases.BASE), open(os.path.join(case["model"], "config.json"), "w"))
    assert_error(run("info", "--model", case["model"]), "no .safetensors")


@pytest.mark.parametrize("option", ["--weight-dtype", "--cache-dtype"])
def test_unknown_precision(case, option):
    line = assert_error(attention(case, **{option: "f64"}), option, "f64")
    assert line.endswith("(use f32, bf16, fp8 or int8)" if option == "--cache-dtype"
                         else "(use f32 or bf16)")
