"""mla tokenize / detokenize against the reference tokenizers on DeepSeek-V3's real
tokenizer.json: Hugging Face's Rust `tokenizers` (npm @anush008/tokenizers, the ground truth)
and an independent JavaScript port (npm @lenml/tokenizers). The npm packages are installed
into a cache folder outside the repository ($MLA_NPM_CACHE, default ~/.cache/mla-npm) once."""
import json
import os
import random
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import npm_oracles  # noqa: E402
import tokenizer_corpus  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


from mla_cli import cli  # noqa: E402


@pytest.fixture(scope="module")
def oracle():
    folder = npm_oracles.folder()
    model = os.path.join(folder, "node_modules", "@lenml", "tokenizer-deepseek_v3", "models")
    env = dict(os.environ, NODE_PATH=os.path.join(folder, "node_modules"))

    def node(*args):
        result = subprocess.run(["node", os.path.join(HERE, "tokenizer_oracle.js"), *args],
                                capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr
    return model, node


def run(*args, stdin=None):
    return subprocess.run([cli(), *args], capture_output=True, timeout=300, input=stdin)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def added_contents(model):
    with open(os.path.join(model, "tokenizer.json"), encoding="utf-8") as f:
        return [t["content"] for t in json.load(f)["added_tokens"]]


def describe(line, ours, ref):
    k = next((i for i, (a, b) in enumerate(zip(ours, ref)) if a != b), min(len(ours), len(ref)))
    return f"line {line!r}: first difference at token {k}: ours {ours[k:k + 8]} reference {ref[k:k + 8]}"


def test_ids_equal_reference_on_every_line(oracle, tmp_path):
    model, node = oracle
    lines = tokenizer_corpus.corpus_lines(added_contents(model))
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    node("encode", model, str(corpus), str(tmp_path / "ref.jsonl"))
    reference = read_jsonl(tmp_path / "ref.jsonl")
    assert len(reference) == len(lines) + 1

    result = run("tokenize", "--model", model, "--file", str(corpus), "--lines")
    assert result.returncode == 0, result.stderr.decode()
    ours = [json.loads(line) for line in result.stdout.decode().split("\n")[:-1]]
    assert len(ours) == len(lines)
    wrong = [describe(lines[i], ours[i], reference[i]["hf"]) for i in range(len(lines))
             if ours[i] != reference[i]["hf"]]
    assert not wrong, f"{len(wrong)} of {len(lines)} lines differ from Hugging Face:\n" + "\n".join(wrong[:10])
    # The JavaScript port is a second, independent opinion; where it differs from Hugging Face
    # (its regexes run in JavaScript's engine) Hugging Face decides, but it must mostly agree.
    lenml_same = sum(1 for i in range(len(lines)) if reference[i]["lenml"] == reference[i]["hf"])
    assert lenml_same >= 0.9 * len(lines), f"the two references agree on only {lenml_same} lines"

    # The whole file as one text: newlines, '\r\n' and line starts inside one input.
    whole = run("tokenize", "--model", model, "--file", str(corpus))
    assert whole.returncode == 0, whole.stderr.decode()
    assert json.loads(whole.stdout) == reference[-1]["hf"]

    # Round trip: the ids decode to the very line they came from.
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(json.dumps(x) for x in ours) + "\n")
    back = run("detokenize", "--model", model, "--ids-file", str(ids_file))
    assert back.returncode == 0, back.stderr.decode()
    texts = [json.loads(line) for line in back.stdout.decode().split("\n")[:-1]]
    bad = [(i, lines[i], texts[i]) for i in range(len(lines)) if texts[i] != lines[i]]
    assert not bad, f"{len(bad)} lines do not round-trip, first: {bad[0]}"


def test_decode_equals_reference_on_broken_utf8(oracle, tmp_path):
    """Random ids split UTF-8 sequences between tokens; the bytes that do not form characters
    must turn into U+FFFD exactly as the reference does."""
    model, node = oracle
    rng = random.Random(7)
    with open(os.path.join(model, "tokenizer.json"), encoding="utf-8") as f:
        spec = json.load(f)
    vocab = spec["model"]["vocab"]
    # Tokens that are a single byte (or a few bytes) of multi-byte characters, plus specials.
    short = [i for t, i in vocab.items() if len(t) <= 2 and any(ord(c) >= 0x80 for c in t)]
    specials = [t["id"] for t in spec["added_tokens"]][:40]
    cases = []
    for _ in range(400):
        n = rng.randint(1, 12)
        cases.append([rng.choice(short) if rng.random() < 0.7 else
                      rng.choice(specials) if rng.random() < 0.2 else rng.randrange(len(vocab))
                      for _ in range(n)])
    cases += [[], [0], [1, 0, 1]]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    node("decode", model, str(ids_file), str(tmp_path / "ref.jsonl"))
    reference = [r["hf"] for r in read_jsonl(tmp_path / "ref.jsonl")]
    result = run("detokenize", "--model", model, "--ids-file", str(ids_file))
    assert result.returncode == 0, result.stderr.decode()
    ours = [json.loads(line) for line in result.stdout.decode().split("\n")[:-1]]
    assert len(reference) == len(cases) and len(ours) == len(cases)
    wrong = [(cases[i], ours[i], reference[i]) for i in range(len(cases)) if ours[i] != reference[i]]
    assert not wrong, f"{len(wrong)} decodes differ, first: {wrong[0]}"
    assert "\ufffd" in "".join(ours), "the cases should include broken UTF-8"
    # --ids prints the same text, exactly (no newline added).
    plain = run("detokenize", "--model", model, "--ids", ",".join(map(str, cases[0])))
    assert plain.returncode == 0 and plain.stdout.decode() == reference[0]


def test_add_special_and_specials_in_text(oracle):
    model, _ = oracle
    text = "Hello\n<｜begin▁of▁sentence｜>Hello"
    plain = run("tokenize", "--model", model, "--text", text, "--lines")
    special = run("tokenize", "--model", model, "--text", text, "--lines", "--add-special")
    hello, inside = [json.loads(line) for line in plain.stdout.decode().split("\n")[:-1]]
    with_bos, inside_bos = [json.loads(line) for line in special.stdout.decode().split("\n")[:-1]]
    assert with_bos == [0] + hello  # bos first: add_bos_token is true, no eos
    assert inside == with_bos  # special-token text in the input is matched
    assert inside_bos == [0, 0] + hello
    back = run("detokenize", "--model", model, "--ids", ",".join(map(str, with_bos)))
    assert back.stdout.decode() == "<｜begin▁of▁sentence｜>Hello"


def variant(spec, pre_tokenizer, extra_tokens=()):
    """DeepSeek-V3's vocabulary and merges under another pre-tokenizer and more added tokens."""
    out = dict(spec)
    out["pre_tokenizer"] = pre_tokenizer
    next_id = max(t["id"] for t in spec["added_tokens"]) + 1
    added = list(spec["added_tokens"])
    for i, flags in enumerate(extra_tokens):
        token = {"id": next_id + i, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": True}
        token.update(flags)
        added.append(token)
    out["added_tokens"] = added
    return out


def split(regex, behavior="Isolated", invert=False, literal=False):
    return {"type": "Split", "pattern": {"String" if literal else "Regex": regex},
            "behavior": behavior, "invert": invert}


BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
FLAG_TOKENS = [
    {"content": "<ls>", "lstrip": True},
    {"content": "<rs>", "rstrip": True},
    {"content": "<both>", "lstrip": True, "rstrip": True, "special": False, "normalized": True},
    {"content": "hello", "single_word": True, "special": False},
    {"content": "Wor", "special": False, "normalized": True},
    {"content": "<｜User｜>x", "special": False},
]
QWEN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
        r"\s*[\r\n]+|\s+(?!\S)|\s+")


def variants(spec):
    v3 = spec["pre_tokenizer"]
    whole_words = variant(spec, v3)
    whole_words["model"] = dict(spec["model"], ignore_merges=True)
    return {
        "ignore_merges": whole_words,
        "flags": variant(spec, v3, FLAG_TOKENS),
        "gpt2": variant(spec, {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                               "use_regex": True}),
        "behaviors": variant(spec, {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, split(" ", "MergedWithNext", literal=True),
            split("[,.]", "MergedWithPrevious"), split(r"\p{Lu}", "Contiguous"), split("x+", "Removed"),
            split(r"\p{L}+", "MergedWithNext", invert=True), BYTE_LEVEL]}),
        "qwen": variant(spec, {"type": "Sequence", "pretokenizers": [split(QWEN), BYTE_LEVEL]}),
        "llm": variant(spec, {"type": "Sequence", "pretokenizers": [
            split(r"[\r\n]"), split(r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-Ֆ]+"),
            split(r"\s?[!-/:-~！-／：-～‘-‟　-。]+"), split(r"\s+$"), split("[一-龥ࠀ-一가-퟿]+"),
            split(r"\p{N}+"), {"type": "Digits", "individual_digits": False}, BYTE_LEVEL]}),
        "empty_matches": variant(spec, {"type": "Sequence", "pretokenizers": [
            split("x*"), split("(?=a)"), split("^|$", "MergedWithNext"), BYTE_LEVEL]}),
    }


def test_ids_equal_reference_under_other_pre_tokenizers_and_token_flags(oracle, tmp_path):
    """Split behaviors, invert, Digits, ByteLevel's own regex and prefix space, empty regex
    matches, and added tokens with lstrip / rstrip / single_word / normalized, each against
    Hugging Face on the same vocabulary."""
    model, node = oracle
    with open(os.path.join(model, "tokenizer.json"), encoding="utf-8") as f:
        spec = json.load(f)
    flag_words = [t["content"] for t in FLAG_TOKENS]
    lines = tokenizer_corpus.corpus_lines(added_contents(model)[:20] + flag_words, seed=16, count=700)
    rng = random.Random(3)
    for _ in range(200):
        w = rng.choice(flag_words)
        lines.append(rng.choice(["", " ", "  ", "a", "x ", "\t"]) + w + rng.choice(["", " ", "  ", "b", "\t", "_", "é"]) +
                     rng.choice(flag_words) + rng.choice(["", " end", "  ", "hello world"]))
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    args = []
    for name, content in variants(spec).items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "tokenizer.json").write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
        args += [str(folder), str(folder / "ref.jsonl")]
    node("encode-hf", str(corpus), *args)
    for name in variants(spec):
        reference = [r["hf"] for r in read_jsonl(tmp_path / name / "ref.jsonl")]
        result = run("tokenize", "--model", str(tmp_path / name), "--file", str(corpus), "--lines")
        assert result.returncode == 0, (name, result.stderr.decode())
        ours = [json.loads(line) for line in result.stdout.decode().split("\n")[:-1]]
        assert len(ours) == len(lines) and len(reference) == len(lines) + 1
        wrong = [describe(lines[i], ours[i], reference[i]) for i in range(len(lines)) if ours[i] != reference[i]]
        assert not wrong, f"{name}: {len(wrong)} of {len(lines)} lines differ:\n" + "\n".join(wrong[:6])
        if name == "llm":  # \s+$ at the corpus's newlines
            whole = run("tokenize", "--model", str(tmp_path / name), "--file", str(corpus))
            assert json.loads(whole.stdout) == reference[-1], name


def test_byte_level_model_tokenizer_matches_reference(oracle, tmp_path):
    """The tokenizer.json written for `mla train`'s byte-level models (mla tokenize
    --write-byte-level) reads the same in Hugging Face: one id per byte, the byte's value."""
    model, node = oracle
    folder = tmp_path / "bytes"
    result = run("tokenize", "--write-byte-level", str(folder))
    assert result.returncode == 0, result.stderr.decode()
    lines = tokenizer_corpus.corpus_lines(added_contents(model)[:5], seed=17, count=300)
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    node("encode-hf", str(corpus), str(folder), str(tmp_path / "ref.jsonl"))
    reference = [r["hf"] for r in read_jsonl(tmp_path / "ref.jsonl")]
    ours = run("tokenize", "--model", str(folder), "--file", str(corpus), "--lines")
    got = [json.loads(line) for line in ours.stdout.decode().split("\n")[:-1]]
    assert got == reference[:-1]
    assert got == [list(line.encode("utf-8")) for line in lines]
