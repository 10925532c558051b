"""The CLI contract of `mla tokenize` / `mla detokenize` on a small byte-level tokenizer written
by the test: output formats, --lines, --add-special, and one stderr line + exit 2 on bad input."""
import json
import os
import subprocess

import pytest


from mla_cli import cli  # noqa: E402


def byte_symbols():
    """GPT-2's bytes_to_unicode, written out: byte -> its printable stand-in."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@pytest.fixture()
def model(tmp_path):
    sym = byte_symbols()
    vocab = {sym[b]: b for b in range(256)}
    merges = [("h", "e"), ("he", "l"), ("hel", "l"), ("hell", "o"), (sym[32], "w")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    spec = {
        "version": "1.0",
        "added_tokens": [{"id": 300,  # the reference renumbers it: 261, the next free id
                           "content": "<bos>", "special": True, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"\p{N}{1,3}"}, "behavior": "Isolated", "invert": False},
            {"type": "Split", "pattern": {"Regex": r" ?\p{L}+|\s+|."}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"add_bos_token": True, "bos_token": {"__type": "AddedToken", "content": "<bos>"}, "eos_token": None}))
    return {"dir": str(folder), "hello": vocab["hello"], "w": vocab[sym[32] + "w"], "tmp": tmp_path}


def run(*args):
    return subprocess.run([cli(), *args], capture_output=True, timeout=60)


def assert_error(result, *words):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    assert result.stdout == b""
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


def test_tokenize_prints_one_json_array(model):
    r = run("tokenize", "--model", model["dir"], "--text", "hello world")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"[{model['hello']},{model['w']},111,114,108,100]\n".encode()
    r = run("tokenize", "--model", model["dir"], "--text", "hello", "--add-special")
    assert r.stdout == f"[261,{model['hello']}]\n".encode()
    r = run("tokenize", "--model", model["dir"], "--text", "<bos>hello")  # matched in the text
    assert r.stdout == f"[261,{model['hello']}]\n".encode()
    assert run("tokenize", "--model", model["dir"], "--text", "").stdout == b"[]\n"


def test_tokenize_lines_keeps_every_line(model):
    f = model["tmp"] / "in.txt"
    f.write_bytes(b"hello\n\nh\r\n12345\n")
    r = run("tokenize", "--model", model["dir"], "--file", str(f), "--lines")
    assert r.returncode == 0, r.stderr
    h = model["hello"]
    # The final newline ends the last line; an empty line gives []; '\r' stays in its line.
    assert r.stdout.decode().split("\n") == [f"[{h}]", "[]", "[104,13]", "[49,50,51,52,53]", ""]
    whole = run("tokenize", "--model", model["dir"], "--file", str(f))
    assert whole.stdout == f"[{h},10,10,104,13,10,49,50,51,52,53,10]\n".encode()
    r = run("tokenize", "--model", model["dir"], "--text", "hello\nhello", "--lines", "--add-special")
    assert r.stdout.decode() == f"[261,{h}]\n[261,{h}]\n"


def test_detokenize_prints_the_text_exactly(model):
    r = run("detokenize", "--model", model["dir"], "--ids", f"261,{model['hello']},{model['w']},10")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"<bos>hello w\n"
    assert run("detokenize", "--model", model["dir"], "--ids", "[104, 105]").stdout == b"hi"
    assert run("detokenize", "--model", model["dir"], "--ids", "261,104", "--skip-special").stdout == b"h"
    assert run("detokenize", "--model", model["dir"], "--ids", "226,130").stdout == "\ufffd".encode()
    f = model["tmp"] / "ids.txt"
    f.write_text("[104,105]\n[]\n10,13\n")
    r = run("detokenize", "--model", model["dir"], "--ids-file", str(f))
    assert r.stdout == b'"hi"\n""\n"\\n\\r"\n'


def test_bad_input_is_one_line_and_exit_2(model, tmp_path):
    d = model["dir"]
    assert_error(run("detokenize", "--model", d, "--ids", "1,x"), "--ids", "non-negative integers")
    assert_error(run("detokenize", "--model", d, "--ids", "-1"), "--ids")
    assert_error(run("detokenize", "--model", d, "--ids", "99999999999"), "--ids")
    assert_error(run("detokenize", "--model", d, "--ids", "1,,2"), "--ids")
    assert_error(run("detokenize", "--model", d, "--ids", "4000"), "token id 4000 is not in the vocabulary")
    assert_error(run("detokenize", "--model", d), "--ids")
    bad_ids = tmp_path / "bad_ids.txt"
    bad_ids.write_text("[1]\n[1,q]\n")
    assert_error(run("detokenize", "--model", d, "--ids-file", str(bad_ids)), "line 2")
    assert_error(run("tokenize", "--model", d), "--text or --file")
    assert_error(run("tokenize", "--text", "a"), "--model is required")
    assert_error(run("tokenize", "--model", d, "--text", "a", "--file", "x"), "excludes")
    assert_error(run("tokenize", "--model", d, "--file", str(tmp_path / "none.txt")), "none.txt: cannot open")
    assert_error(run("tokenize", "--model", str(tmp_path / "nowhere"), "--text", "a"),
                 "tokenizer.json: cannot open")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nbroken \xff here\n")
    assert_error(run("tokenize", "--model", d, "--file", str(bad), "--lines"),
                 "line 2", "not valid UTF-8 at byte 7")
    assert_error(run("tokenize", "--model", d, "--file", str(bad)), "not valid UTF-8 at byte 12")
    broken = tmp_path / "broken"
    broken.mkdir()
    spec = json.loads((tmp_path / "model" / "tokenizer.json").read_text())
    del spec["model"]
    (broken / "tokenizer.json").write_text(json.dumps(spec))
    assert_error(run("tokenize", "--model", str(broken), "--text", "a"), "tokenizer.json: model: missing")
    spec = json.loads((tmp_path / "model" / "tokenizer.json").read_text())
    spec["model"]["merges"][1] = "he"
    (broken / "tokenizer.json").write_text(json.dumps(spec))
    assert_error(run("tokenize", "--model", str(broken), "--text", "a"), "model.merges[1]")
    spec["model"]["merges"][1] = "he l"
    spec["pre_tokenizer"]["pretokenizers"][0]["type"] = "Metaspace"
    (broken / "tokenizer.json").write_text(json.dumps(spec))
    assert_error(run("tokenize", "--model", str(broken), "--text", "a"),
                 "pre_tokenizer.pretokenizers[0].type: 'Metaspace' is not supported")
    (broken / "tokenizer.json").write_text("{not json")
    assert_error(run("tokenize", "--model", str(broken), "--text", "a"), "invalid JSON")
