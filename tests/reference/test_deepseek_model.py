"""`mla forward` on whole tiny DeepSeek checkpoints against the PyTorch transcription of the
official Transformer (deepseek_reference.py, float64): every routing style, f32/bf16/FP8 storage,
sharded checkpoints with an MTP layer, prefill == cached decode, batched == alone, and the
errors of bad checkpoints (exit 2, one line naming the tensor or field)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_cases as dc  # noqa: E402
import deepseek_reference as dr  # noqa: E402
import safetensors_io  # noqa: E402

TOLERANCE = 1e-5  # max |y - y_ref| / max |y_ref|, float32 against float64
BF16_TOLERANCE = 3e-2  # bf16 weights and activations against the float64 reference
INT8_TOLERANCE = 5e-2  # int8 per-row weights (MLP, experts, head) + bf16 attention
TOKENS = np.array([[3, 5, 7, 11, 2, 9, 40], [1, 4, 4, 60, 33, 8, 0], [63, 62, 10, 10, 10, 5, 6]])


from mla_cli import cli  # noqa: E402


def run_forward(model, tokens, tmp, *extra, dtype="I32", env=None):
    tok = os.path.join(tmp, "tokens.safetensors")
    out = os.path.join(tmp, "logits.safetensors")
    dc.write_tokens(tok, tokens, dtype)
    # One thread: tiny shapes, and the shared test machine is not oversubscribed.
    threads = [] if "--threads" in extra else ["--threads", "1"]
    r = subprocess.run([cli(), "forward", "--model", model, "--tokens", tok, "--output", out,
                        *threads, *extra], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return safetensors_io.read(out)["logits"]


def rel_error(y, ref):
    return float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))


def make_case(root, style, seed=1, dtype="F32", shards=1, fp8=(), **overrides):
    cfg = dc.config(style, **overrides)
    tensors = dc.make_tensors(cfg, seed)
    stored = dc.write(root, cfg, tensors, dtype=dtype, shards=shards, fp8=fp8)
    return cfg, stored


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    out = {}
    for style in dc.STYLES:
        path = str(root / style)
        cfg, stored = make_case(path, style)
        out[style] = (path, dr.Model(cfg, stored).forward(TOKENS).numpy())
    return out


@pytest.mark.parametrize("style", sorted(dc.STYLES))
def test_matches_official_transformer(style, cases, tmp_path):
    model, ref = cases[style]
    threads = ["--threads", "2"] if style == "v3" else []  # the threaded kernels too
    y = run_forward(model, TOKENS, str(tmp_path), "--weight-dtype", "f32", *threads)
    assert y.shape == ref.shape
    assert rel_error(y, ref) <= TOLERANCE


@pytest.mark.parametrize("style", ["v2lite", "v3", "v32"])
@pytest.mark.parametrize("prefill", ["0", "3"])
def test_cached_decode_equals_prefill(style, prefill, cases, tmp_path):
    model, ref = cases[style]
    y = run_forward(model, TOKENS, str(tmp_path), "--prefill", prefill, dtype="I64")
    assert rel_error(y, ref) <= TOLERANCE


def test_sparse_dsa_model_decode_equals_prefill(tmp_path):
    """V3.2 with index_topk 3 below the length: attention is really sparse (differs from dense),
    and the cached decode selects the same keys as the prefill."""
    model = str(tmp_path / "v32sparse")
    cfg, stored = make_case(model, "v32", seed=9, index_topk=3)
    dense = dr.Model(cfg, stored).forward(TOKENS).numpy()
    whole = run_forward(model, TOKENS, str(tmp_path))
    for prefill in ("0", "4"):
        assert rel_error(run_forward(model, TOKENS, str(tmp_path), "--prefill", prefill), whole) <= TOLERANCE
    assert rel_error(whole[:, :3], dense[:, :3]) <= TOLERANCE  # up to 3 tokens: every key kept
    assert rel_error(whole, dense) > 1e-3


def test_batched_equals_alone(cases, tmp_path):
    model, ref = cases["v3"]
    both = run_forward(model, TOKENS, str(tmp_path), "--prefill", "2")
    for b in range(TOKENS.shape[0]):
        alone = run_forward(model, TOKENS[b : b + 1], str(tmp_path), "--prefill", "2")
        assert rel_error(alone[0], both[b]) <= TOLERANCE
        assert rel_error(alone[0], ref[b]) <= TOLERANCE


def test_bf16_sharded_checkpoint_with_mtp_layer(tmp_path):
    model = str(tmp_path / "v3bf16")
    cfg, stored = make_case(model, "v3", seed=2, dtype="BF16", shards=3)
    assert cfg["num_nextn_predict_layers"] == 1 and "model.layers.3.eh_proj.weight" in stored
    ref = dr.Model(cfg, stored).forward(TOKENS).numpy()
    exact = run_forward(model, TOKENS, str(tmp_path), "--weight-dtype", "f32")
    assert rel_error(exact, ref) <= TOLERANCE
    fast = run_forward(model, TOKENS, str(tmp_path), "--prefill", "4")  # default: bf16
    assert rel_error(fast, ref) <= BF16_TOLERANCE
    # int8 MLP/expert/head weights (per-row scales), bf16 attention: measured ~1-2% here.
    int8 = run_forward(model, TOKENS, str(tmp_path), "--prefill", "4", "--weight-dtype", "int8")
    assert rel_error(int8, ref) <= INT8_TOLERANCE
    assert rel_error(int8, fast) > 0  # the int8 products really ran


@pytest.mark.parametrize("dtype", ["fp8", "int8"])
def test_quantized_latent_cache(dtype, tmp_path):
    """--cache-dtype fp8|int8: DeepSeek-V3.2's quantized latent rows in every layer, through
    prefill and cached decode, equal the official absorbed decode whose cache keeps the same
    rounded rows (quantized_cache_rows: the layout transcribed), and differ from the float one."""
    model = str(tmp_path / "v3")
    cfg, stored = make_case(model, "v3", seed=4, kv_lora_rank=160)  # two groups: 128 + 32
    ref = dr.Model(cfg, stored, cache_rows=dr.quantized_cache_rows(dtype))
    want = ref.step(TOKENS, 0, ref.new_cache(*TOKENS.shape)).numpy()
    exact = dr.Model(cfg, stored).forward(TOKENS).numpy()
    # Held to the float32-arithmetic kernels (MLA_SIMD=avx512 is clamped to what the CPU has):
    # the VDPBF16PS kernel rounds queries and probabilities to bf16 (held to the float32 kernel in
    # tests/model/test_quantized_cache.cc), and this random MoE magnifies any difference by
    # flipping routes (measured: 3-15% from bf16 rounding alone), so only exact arithmetic can be
    # compared to the reference here.
    env = dict(os.environ, MLA_SIMD="avx512")
    y = run_forward(model, TOKENS, str(tmp_path), "--weight-dtype", "f32", "--cache-dtype", dtype,
                    "--prefill", "3", env=env)
    assert rel_error(y, want) <= TOLERANCE
    assert rel_error(y, exact) > 1e-3  # the cache really was quantized
    tok = str(tmp_path / "tokens.safetensors")
    r = subprocess.run([cli(), "forward", "--model", model, "--tokens", tok, "--output",
                        str(tmp_path / "o.safetensors"), "--cache-dtype", "fp4"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "--cache-dtype: unknown value 'fp4' (use f32, bf16, fp8 or int8)" in r.stderr


def test_quantized_cache_refuses_dsa(cases, tmp_path):
    tok = str(tmp_path / "tokens.safetensors")
    dc.write_tokens(tok, TOKENS, "I32")
    r = subprocess.run([cli(), "forward", "--model", cases["v32"][0], "--tokens", tok, "--output",
                        str(tmp_path / "o.safetensors"), "--cache-dtype", "int8"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "I8 latent cache does not serve DSA" in r.stderr


def test_fp8_block_scaled_weights(tmp_path):
    model = str(tmp_path / "v3fp8")
    fp8 = ["model.layers.1.mlp.experts.3.up_proj.weight", "model.layers.2.mlp.shared_experts.down_proj.weight",
           "model.layers.0.mlp.gate_proj.weight", "model.layers.1.self_attn.kv_b_proj.weight"]
    cfg, stored = make_case(model, "v3", seed=3, dtype="BF16", fp8=fp8)
    ref = dr.Model(cfg, stored).forward(TOKENS).numpy()
    assert rel_error(run_forward(model, TOKENS, str(tmp_path), "--weight-dtype", "f32"), ref) <= TOLERANCE
    # bf16 (the default here): the FP8 expert and MLP matrices stay FP8 in the mapping.
    assert rel_error(run_forward(model, TOKENS, str(tmp_path), "--prefill", "2"), ref) <= BF16_TOLERANCE


def test_tied_embeddings(tmp_path):
    model = str(tmp_path / "tied")
    cfg, stored = make_case(model, "v2lite", seed=4, tie_word_embeddings=True, moe_layer_freq=2)
    assert "lm_head.weight" not in stored
    ref = dr.Model(cfg, stored).forward(TOKENS).numpy()
    assert rel_error(run_forward(model, TOKENS, str(tmp_path)), ref) <= TOLERANCE


def _drop(name):
    return lambda t: t.pop(name)


def _reshape(name, shape):
    return lambda t: t.__setitem__(name, np.ones(shape))


def _add(name, shape):
    return lambda t: t.__setitem__(name, np.zeros(shape))


BAD = {
    "missing_expert": ("v2lite", {}, _drop("model.layers.1.mlp.experts.5.up_proj.weight"),
                       "missing tensor 'model.layers.1.mlp.experts.5.up_proj.weight'"),
    "wrong_expert_shape": ("v3", {}, _reshape("model.layers.2.mlp.experts.2.down_proj.weight", (32, 17)),
                           "'model.layers.2.mlp.experts.2.down_proj.weight': expected shape [32, 16], got [32, 17]"),
    "bias_on_greedy_router": ("v2lite", {}, _add("model.layers.1.mlp.gate.e_score_correction_bias", (8,)),
                              "'model.layers.1.mlp.gate.e_score_correction_bias': topk_method is greedy"),
    "missing_router_bias": ("v3", {}, _drop("model.layers.1.mlp.gate.e_score_correction_bias"),
                            "missing tensor 'model.layers.1.mlp.gate.e_score_correction_bias'"),
    "vocab_mismatch": ("v2", {}, _reshape("lm_head.weight", (63, 32)),
                       "'lm_head.weight': expected shape [64, 32], got [63, 32]"),
    "unknown_architecture": ("v3", {"architectures": ["LlamaForCausalLM"]}, None,
                             "architectures: unknown architecture 'LlamaForCausalLM'"),
    "topk_group_above_n_group": ("v2", {"topk_group": 5}, None,
                                 "topk_group: must be between 1 and n_group (4), got 5"),
    "experts_not_divisible": ("v3", {"n_group": 3}, None, "n_group: must be at most 64 and divide"),
    "bad_scoring": ("v3", {"scoring_func": "relu"}, None, "scoring_func: must be one of softmax, sigmoid, got 'relu'"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_checkpoint_exits_2_naming_it(name, tmp_path):
    style, overrides, edit, expected = BAD[name]
    model = str(tmp_path / name)
    cfg = dc.config(style, **overrides)
    tensors = dc.make_tensors(cfg, 5)
    if edit:
        edit(tensors)
    dc.write(model, cfg, tensors)
    tok = str(tmp_path / "tokens.safetensors")
    dc.write_tokens(tok, TOKENS)
    r = subprocess.run([cli(), "forward", "--model", model, "--tokens", tok, "--output",
                        str(tmp_path / "out.safetensors")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("mla: error: ")
    assert expected in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "out.safetensors")


@pytest.mark.parametrize("dtype", ["BF16", "F32"])
def test_nan_weight_exits_2_naming_it(dtype, tmp_path):
    cfg = dc.config("v2lite")
    tensors = dc.make_tensors(cfg, 5)
    tensors["model.layers.2.mlp.experts.6.down_proj.weight"][1, 2] = np.nan  # value 1*16+2
    dc.write(str(tmp_path / "m"), cfg, tensors, dtype=dtype)
    tok = str(tmp_path / "tokens.safetensors")
    dc.write_tokens(tok, TOKENS)
    r = subprocess.run([cli(), "forward", "--model", str(tmp_path / "m"), "--tokens", tok,
                        "--output", str(tmp_path / "o.safetensors")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "'model.layers.2.mlp.experts.6.down_proj.weight': value 18 is NaN or infinity" in r.stderr


def test_bad_tokens_exit_2(cases, tmp_path):
    model, _ = cases["v2lite"]
    tok = str(tmp_path / "tokens.safetensors")
    for tokens, dtype, expected in [(TOKENS + 64, "I32", "outside the vocabulary of 64"),
                                    (TOKENS.astype(np.float32), "F32", "dtype must be I32 or I64"),
                                    (TOKENS[0], "I64", "shape must be [batch, seq]")]:
        dc.write_tokens(tok, tokens, dtype)
        r = subprocess.run([cli(), "forward", "--model", model, "--tokens", tok, "--output",
                            str(tmp_path / "o.safetensors")], capture_output=True, text=True)
        assert r.returncode == 2 and expected in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_malformed_token_files_exit_2(cases, tmp_path):
    model, _ = cases["v2lite"]
    tok = str(tmp_path / "tokens.safetensors")
    ids = np.arange(6, dtype=np.int32).tobytes()
    good = {"dtype": "I32", "shape": [2, 3], "data_offsets": [0, 24]}
    for header, data, expected in [
        ({"tokens": good}, ids[:20], "data_offsets do not match its shape and the file size"),
        ({"tokens": dict(good, data_offsets=[8, 32])}, ids, "data_offsets do not match"),
        ({"tokens": dict(good, shape=[2, 4])}, ids, "data_offsets do not match"),
        ({"tokens": dict(good, shape=[0, 3], data_offsets=[0, 0])}, b"", "must have 1 <= batch, seq"),
        ({"other": good}, ids, "no tensor 'tokens'"),
        ({"tokens": dict(good, data_offsets=[0, 2 ** 64 - 1])}, ids, "data_offsets do not match"),
        ({"tokens": dict(good, shape=[-1, 3])}, ids, "shape must be [batch, seq]"),
    ]:
        with open(tok, "wb") as f:
            f.write(safetensors_io.raw_file(header, data))
        r = subprocess.run([cli(), "forward", "--model", model, "--tokens", tok, "--output",
                            str(tmp_path / "o.safetensors")], capture_output=True, text=True)
        assert r.returncode == 2 and expected in r.stderr and r.stderr.count("\n") == 1, r.stderr
    with open(tok, "wb") as f:
        f.write(safetensors_io.raw_file({"tokens": good}, b"", header_len=10 ** 6))
    r = subprocess.run([cli(), "forward", "--model", model, "--tokens", tok, "--output",
                        str(tmp_path / "o.safetensors")], capture_output=True, text=True)
    assert r.returncode == 2 and "header length exceeds the file size" in r.stderr


def test_reference_moe_matches_dense_expert_sum():
    """The transcription's MoE against a plain loop over tokens (guards the reference)."""
    cfg = dc.config("v3")
    model = dr.Model(cfg, dc.make_tensors(cfg, 6))
    x = dr.torch.randn(5, cfg["hidden_size"], dtype=dr.torch.float64)
    p = "model.layers.1.mlp."
    y = model.moe(p, x)
    w, idx = model.gate(p, x)
    for t in range(5):
        want = model.mlp(p + "shared_experts.", x[t : t + 1])
        for j in range(idx.shape[1]):
            want = want + w[t, j] * model.mlp(p + f"experts.{int(idx[t, j])}.", x[t : t + 1])
        assert dr.torch.allclose(y[t], want[0], atol=1e-12)
    assert dr.torch.allclose(w.sum(-1), dr.torch.full((5,), 2.5, dtype=dr.torch.float64))
    assert json.loads(json.dumps(cfg))["topk_method"] == "noaux_tc"


def test_info_describes_the_whole_model(cases):
    model, _ = cases["v3"]
    cfg = dc.config("v3")
    tensors = dc.make_tensors(cfg, 1)
    mtp = f"model.layers.{cfg['num_hidden_layers']}."
    decoder = sum(v.size for k, v in tensors.items() if not k.startswith(mtp))
    expert = 3 * cfg["hidden_size"] * cfg["moe_intermediate_size"]
    moe_layers = cfg["num_hidden_layers"] - cfg["first_k_dense_replace"]
    unused = moe_layers * (cfg["n_routed_experts"] - cfg["num_experts_per_tok"]) * expert
    embed = cfg["vocab_size"] * cfg["hidden_size"]
    r = subprocess.run([cli(), "info", "--model", model, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["architecture"] == "DeepseekV3ForCausalLM" and j["model_type"] == "kimi_k2"
    assert j["layers"] == {"total": 3, "dense": 1, "moe": 2, "dsa": False, "mtp_skipped": 1}
    assert j["parameters"] == decoder
    assert j["active_parameters_per_token"] == decoder - unused - embed
    assert j["checkpoint"]["F32"]["parameters"] == sum(v.size for v in tensors.values())
    assert j["cache_bytes_per_token"]["bf16"] == 3 * 2 * (16 + 4)
    text = subprocess.run([cli(), "info", "--model", model], capture_output=True, text=True).stdout
    assert "attention tensors of layer 0" in text  # the single-layer view is kept
    assert "layers: 3 (1 dense MLP, 2 MoE); MTP layers skipped: 1" in text


def test_bench_whole_model(cases, tmp_path):
    model, _ = cases["v2lite"]
    out = str(tmp_path / "bench.json")
    for source in (["--model", model], ["--preset", "tiny-moe-model", "--layers", "2"]):
        r = subprocess.run([cli(), "bench", *source, "--threads", "1", "--batches", "1,3",
                            "--repeats", "2", "--prefill-tokens", "8", "--decode-context", "4",
                            "--json", out], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        j = json.load(open(out))
        assert [d["batch"] for d in j["decode"]] == [1, 3]
        assert all(d["tokens_per_second"] > 0 for d in j["decode"])
        assert j["prefill"]["tokens"] == 8 and j["prefill"]["tokens_per_second"] > 0
        assert j["memory_floor"]["active_weight_bytes"] > 0 and j["weight_dtype"] == "bf16"
        assert j["cache_dtype"] == "BF16"
    assert j["layers"] == 2
    r = subprocess.run([cli(), "bench", "--preset", "tiny-moe-model", "--layers", "2", "--threads", "1",
                        "--batches", "1", "--repeats", "1", "--prefill-tokens", "8", "--decode-context", "4",
                        "--cache-dtype", "fp8", "--json", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    j = json.load(open(out))
    assert j["cache_dtype"] == "F8_E4M3" and "F8_E4M3 cache" in r.stdout
    # tiny: R = 32 e4m3 codes, one float32 scale, Dr = 8 bf16 numbers in each of 2 layers
    assert j["cache_bytes_per_token"] == 2 * (32 + 4 + 2 * 8)
    r = subprocess.run([cli(), "bench", "--model", model, "--layers", "2"], capture_output=True, text=True)
    assert r.returncode == 2 and "--layers: applies to --preset" in r.stderr


def test_reference_cached_absorbed_decode_equals_naive_prefill():
    """The transcription's two attention forms (official naive and absorb) agree."""
    cfg = dc.config("v2")
    model = dr.Model(cfg, dc.make_tensors(cfg, 8))
    full = model.forward(TOKENS)
    cache = model.new_cache(TOKENS.shape[0], TOKENS.shape[1])
    parts = [model.step(TOKENS[:, :3], 0, cache)]
    parts += [model.step(TOKENS[:, t : t + 1], t, cache) for t in range(3, TOKENS.shape[1])]
    assert dr.torch.allclose(dr.torch.cat(parts, dim=1), full, atol=1e-10)
