"""A tiny servable model folder for the server tests and the load bench: a random-weight
DeepSeek-V3-style checkpoint (tests/reference/deepseek_cases.py) with a byte-level BPE
tokenizer.json, a tokenizer_config.json and a chat template of our own in DeepSeek's style."""
import json

import numpy as np
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import deepseek_cases as dc  # noqa: E402
import safetensors_io  # noqa: E402

BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}" + USER + "{{ m['content'] }}"
    "{% else %}" + ASSISTANT + "{{ m['content'] }}" + EOS + "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}")
MERGES = [("t", "h"), ("h", "e"), ("th", "e"), ("Ġ", "t"), ("Ġ", "a"), ("i", "n"), ("e", "r"), ("o", "u"),
          ("Ġt", "he"), ("a", "n"), ("r", "e")]


def byte_chars():
    """GPT-2's printable stand-ins for the 256 byte values (the ByteLevel alphabet)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def tokenizer_json():
    vocab = {c: i for i, c in enumerate(byte_chars())}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    specials = [BOS, EOS, USER, ASSISTANT]
    added = [{"id": len(vocab) + i, "content": s, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}
             for i, s in enumerate(specials)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"\s?\p{L}+|\s?\p{N}{1,3}|\s?[^\s\p{L}\p{N}]+|\s+"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
             "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in MERGES]},
    }


def write_model(root, seed=3, max_positions=512, **shape):
    """Writes the folder and returns (path, vocab_size, bos_id, eos_id). `shape` overrides
    config fields (hidden_size, num_hidden_layers, ...)."""
    tok = tokenizer_json()
    vocab = len(tok["model"]["vocab"]) + len(tok["added_tokens"])
    bos = tok["added_tokens"][0]["id"]
    eos = tok["added_tokens"][1]["id"]
    cfg = dc.config("v3", vocab_size=vocab, bos_token_id=bos, eos_token_id=eos,
                    max_position_embeddings=max_positions, num_nextn_predict_layers=0, **shape)
    dc.write(root, cfg, dc.make_tensors(cfg, seed))
    with open(os.path.join(root, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(root, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": BOS,
                   "eos_token": EOS, "chat_template": CHAT_TEMPLATE}, f, ensure_ascii=False)
    return root, vocab, bos, eos


class Server:
    """`mla serve` on a free loopback port, stopped (SIGTERM) on close."""

    def __init__(self, cli, model, *extra, timeout=60):
        self.proc = subprocess.Popen([cli, "serve", "--model", model, "--port", "0", *extra],
                                     stderr=subprocess.PIPE, text=True)
        self.log = []
        deadline = time.time() + timeout
        self.url = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            if "listening on http://" in line:
                self.url = line.strip().split("listening on ")[1]
                break
        if self.url is None:
            self.close()
            raise RuntimeError("mla serve did not start:\n" + "".join(self.log))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def greedy_by_recompute(cli, model_dir, prompt, n, eos, tmp, add_special=True):
    """Greedy tokens by running the whole sequence through `mla forward` at every step."""
    ids = json.loads(subprocess.run([cli, "tokenize", "--model", model_dir, "--text", prompt,
                                     *(["--add-special"] if add_special else [])], capture_output=True, text=True,
                                    check=True).stdout)
    out = []
    for _ in range(n):
        tok = os.path.join(tmp, "t.safetensors")
        logits = os.path.join(tmp, "l.safetensors")
        safetensors_io.write(tok, {"tokens": np.array([ids + out], dtype=np.int32)}, dtype="I32")
        subprocess.run([cli, "forward", "--model", model_dir, "--tokens", tok, "--output", logits,
                        "--threads", "1"], check=True, capture_output=True)
        nxt = int(np.argmax(safetensors_io.read(logits)["logits"][0, -1]))
        if nxt == eos:
            break
        out.append(nxt)
    return out


def detokenize(cli, model_dir, ids):
    if not ids:
        return ""
    return subprocess.run([cli, "detokenize", "--model", model_dir, "--ids",
                           ",".join(map(str, ids))], capture_output=True, text=True,
                          check=True).stdout
