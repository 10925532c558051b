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


from mla_cli import cli  # noqa: E402


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
    # A quantized latent cache through the same loop: it runs and reports its tokens.
    int8 = generate_json(model_dir, "--prompt", "the end of it", "--temperature", "0",
                         "--max-tokens", "7", "--cache-dtype", "int8")
    assert int8["prompt_tokens"] == out["prompt_tokens"] and int8["generated_tokens"] >= 1
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
    r = mla("generate", "--model", run, "--prompt", "a", "--cache-dtype", "fp8", ok=False)
    assert r.returncode == 2 and r.stderr.startswith(
        "mla: error: --cache-dtype: applies to DeepSeek checkpoint folders, not to ")


@pytest.mark.parametrize("args,message", [
    (["--temperature", "0"], "--prompt: required unless --chat"),
    (["--prompt", "a", "--system", "s"], "--system: only with --chat"),
    (["--prompt", "a", "--top-p", "0"], "top_p"),
    (["--prompt", "a", "--stop", ""], "--stop: must not be empty"),
    (["--prompt", "a", "--weight-dtype", "f16"], "--weight-dtype: must be f32, bf16 or int8"),
    (["--prompt", "a", "--cache-dtype", "f16"],
     "--cache-dtype: unknown value 'f16' (use f32, bf16, fp8 or int8)"),
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


def test_chat_with_deepseek_v3s_released_tokenizer(tmp_path):
    """A checkpoint folder as released: DeepSeek-V3's real tokenizer.json and
    tokenizer_config.json (chat template included) beside tiny random V3-style weights of its
    vocabulary size. The chat prompt's ids equal Python's jinja2 rendering of the same template
    tokenized by `mla tokenize`, and greedy decoding equals recomputing with `mla forward`."""
    sys.path.insert(0, os.path.join(HERE, "..", "support"))
    import shutil

    import jinja2
    import npm_oracles
    released = npm_oracles.deepseek_v3_files()
    with open(os.path.join(released, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    vocab = 129280
    model_dir = str(tmp_path / "v3")
    cfg = serving_model.dc.config("v3", vocab_size=vocab, bos_token_id=0, eos_token_id=1,
                                  num_nextn_predict_layers=0, num_hidden_layers=2)
    serving_model.dc.write(model_dir, cfg, serving_model.dc.make_tensors(cfg, 4))
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(released, name), model_dir)

    def text_of(token):
        return token["content"] if isinstance(token, dict) else token

    messages = [{"role": "system", "content": "You are helpful."},
                {"role": "user", "content": "Hello, what is 2+2?"}]
    rendered = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        config["chat_template"]).render(messages=messages, add_generation_prompt=True,
                                        bos_token=text_of(config["bos_token"]),
                                        eos_token=text_of(config["eos_token"]))
    want_ids = json.loads(mla("tokenize", "--model", model_dir, "--text", rendered).stdout)
    out = generate_json(model_dir, "--chat", "--system", "You are helpful.", "--prompt",
                        "Hello, what is 2+2?", "--temperature", "0", "--max-tokens", "3")
    assert out["prompt_tokens"] == len(want_ids)
    assert want_ids[0] == 0  # bos, written once by the template
    tok = os.path.join(str(tmp_path), "ids.safetensors")
    logits = os.path.join(str(tmp_path), "logits.safetensors")
    ids = list(want_ids)
    for _ in range(out["generated_tokens"]):
        safetensors_io.write(tok, {"tokens": np.array([ids], dtype=np.int32)}, dtype="I32")
        mla("forward", "--model", model_dir, "--tokens", tok, "--output", logits, "--threads", "1")
        ids.append(int(np.argmax(safetensors_io.read(logits)["logits"][0, -1])))
    generated = [t for t in ids[len(want_ids):] if t != 1]
    want_text = mla("detokenize", "--model", model_dir, "--skip-special", "--ids",
                    ",".join(map(str, generated))).stdout if generated else ""
    assert out["text"] == want_text
