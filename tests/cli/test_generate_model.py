"""`mla generate --model` and `mla perplexity` on a whole DeepSeek checkpoint folder with a
tokenizer (tests/serve/serving_model.py writes it) and on a model `mla train` wrote: greedy
output through the cache equals recomputing the whole sequence, streaming, chat (one turn and an
interactive conversation that reuses its cache), stop strings, the JSON summary, perplexity equal
to a NumPy computation from `mla forward`'s logits, and exact errors."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "serve"))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import safetensors_io  # noqa: E402
import serving_model  # noqa: E402


def cli():
    path = os.environ.get("MLA_CLI")
    if not path:
        pytest.fail("MLA_CLI is not set: run through ctest, or export MLA_CLI=build/mla")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return serving_model.write_model(str(tmp_path_factory.mktemp("gen")))


def mla(*args, input=None, ok=True):
    r = subprocess.run([cli(), *args], capture_output=True, text=True, input=input)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def generate_json(model_dir, *args):
    return json.loads(mla("generate", "--model", model_dir, "--json", "--threads", "1",
                          *args).stdout)


def test_greedy_equals_recomputing(model, tmp_path):
    model_dir, _, _, eos = model
    out = generate_json(model_dir, "--prompt", "the end of it", "--temperature", "0",
                        "--max-tokens", "7")
    want = serving_model.greedy_by_recompute(cli(), model_dir, "the end of it", 7, eos,
                                             str(tmp_path))
    assert out["text"] == serving_model.detokenize(cli(), model_dir, want).rstrip("\n")
    no_cache = generate_json(model_dir, "--prompt", "the end of it", "--temperature", "0",
                             "--max-tokens", "7", "--no-cache")
    assert no_cache["text"] == out["text"]
    assert out["finish_reason"] == ("length" if len(want) == 7 else "stop")
    for key in ["prompt_tokens", "generated_tokens", "prompt_tokens_per_s",
                "generation_tokens_per_s"]:
        assert key in out


def test_streams_prompt_then_text_and_speeds(model):
    model_dir = model[0]
    r = mla("generate", "--model", model_dir, "--prompt", "hello", "--temperature", "0",
            "--max-tokens", "5", "--threads", "1")
    out = generate_json(model_dir, "--prompt", "hello", "--temperature", "0", "--max-tokens", "5")
    assert r.stdout == "hello" + out["text"] + "\n"
    assert "prompt: " in r.stderr and "generation: " in r.stderr and "tokens/s" in r.stderr


def test_sampling_is_seeded(model):
    args = ["--prompt", "abc", "--temperature", "1.0", "--top-p", "0.9", "--top-k", "50",
            "--min-p", "0.01", "--repeat-penalty", "1.1", "--max-tokens", "12"]
    a = generate_json(model[0], *args, "--seed", "5")
    b = generate_json(model[0], *args, "--seed", "5")
    assert a["text"] == b["text"]


def test_stop_string(model):
    full = generate_json(model[0], "--prompt", "x y z", "--temperature", "0", "--max-tokens", "20")
    text = full["text"]
    if full["finish_reason"] != "length" or len(text) < 6:
        pytest.skip("the random model ended early")
    stop = text[2:4]
    cut = generate_json(model[0], "--prompt", "x y z", "--temperature", "0", "--max-tokens", "20",
                        "--stop", stop)
    assert cut["text"] == text[: text.index(stop)]
    assert cut["finish_reason"] == "stop"


def test_chat_turn_and_interactive_history(model):
    model_dir = model[0]
    one = generate_json(model_dir, "--chat", "--system", "Be brief.", "--prompt", "Hi",
                        "--temperature", "0", "--max-tokens", "6")
    # The same conversation typed on stdin: two turns; the second reuses the first from the cache.
    r = mla("generate", "--model", model_dir, "--chat", "--system", "Be brief.", "--json",
            "--temperature", "0", "--max-tokens", "6", "--threads", "1", input="Hi\nAnd then?\n")
    turns = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(turns) == 2
    assert turns[0]["text"] == one["text"]
    assert turns[0]["cached_prompt_tokens"] == 0
    assert turns[1]["cached_prompt_tokens"] > turns[0]["prompt_tokens"] // 2


def test_trained_model_through_the_same_command(tmp_path):
    run = str(tmp_path / "run")
    mla("train", "--preset", "tiny", "--steps", "3", "--checkpoint-dir", run)
    new = mla("generate", "--model", run, "--prompt", "abc|", "--temperature", "0",
              "--max-tokens", "8")
    old = mla("generate", "--checkpoint", run, "--prompt", "abc|", "--temperature", "0",
              "--max-tokens", "8")
    assert new.stdout == old.stdout
    assert new.stdout.startswith("abc|")
    r = mla("generate", "--model", run, "--chat", "--prompt", "hi", ok=False)
    assert r.returncode == 2 and "has no chat template" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,message", [
    (["--temperature", "0"], "--prompt: required unless --chat"),
    (["--prompt", "a", "--system", "s"], "--system: only with --chat"),
    (["--prompt", "a", "--top-p", "0"], "top_p"),
    (["--prompt", "a", "--stop", ""], "--stop: must not be empty"),
    (["--prompt", "a", "--weight-dtype", "f16"], "--weight-dtype: must be f32, bf16 or int8"),
])
def test_errors(model, args, message):
    r = mla("generate", "--model", model[0], *args, ok=False)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def reference_perplexity(model_dir, text_path, context, stride, tmp):
    ids = json.loads(mla("tokenize", "--model", model_dir, "--file", text_path,
                         "--add-special").stdout)
    total, count, prev_end, begin = 0.0, 0, 0, 0
    while prev_end < len(ids):
        end = min(begin + context, len(ids))
        tok = os.path.join(tmp, "w.safetensors")
        out = os.path.join(tmp, "wl.safetensors")
        safetensors_io.write(tok, {"tokens": np.array([ids[begin:end]], dtype=np.int32)},
                             dtype="I32")
        mla("forward", "--model", model_dir, "--tokens", tok, "--output", out, "--threads", "1")
        logits = safetensors_io.read(out)["logits"][0].astype(np.float64)
        logp = logits - logits.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        for target in range(max(prev_end, begin + 1), end):
            total -= logp[target - begin - 1, ids[target]]
            count += 1
        prev_end = end
        begin += stride
    return math.exp(total / count), count


@pytest.mark.parametrize("context,stride", [(400, 400), (48, 20)])
def test_perplexity_equals_numpy(model, tmp_path, context, stride):
    text = tmp_path / "text.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n\n" * 4)
    r = mla("perplexity", "--model", model[0], "--file", str(text), "--context", str(context),
            "--stride", str(stride), "--json", "--threads", "1")
    got = json.loads(r.stdout)
    want, count = reference_perplexity(model[0], str(text), context, stride, str(tmp_path))
    assert got["scored_tokens"] == count
    assert abs(got["perplexity"] - want) <= 1e-4 * want
    assert "tokens/s" in r.stderr and "%" in r.stderr  # the progress bar


def test_perplexity_errors(model, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("some words here")
    r = mla("perplexity", "--model", model[0], "--file", str(text), "--context", "8",
            "--stride", "9", ok=False)
    assert r.returncode == 2 and "--stride: must be between 1 and --context (8)" in r.stderr
    r = mla("perplexity", "--model", model[0], "--file", str(tmp_path / "missing.txt"), ok=False)
    assert r.returncode == 2 and "cannot open the file" in r.stderr
