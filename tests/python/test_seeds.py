"""Every seed preset from Python: prefill, decode through the cache (== prefill), naive ==
absorbed, and each seed's own call convention; outputs against the independent float64 PyTorch
reference (tests/reference/mla_reference.py, naive form)."""
import json

import numpy as np
import pytest
import torch

import mla
import mla_reference as ref


def reference_output(layer, x):
    cfg = ref.Config.from_json(json.loads(layer.config.to_json()))
    weights = {"model.layers.0.self_attn." + k: v for k, v in layer.weights.items()}
    return ref.Layer(cfg, weights).naive(x.astype(np.float64)).numpy()


def rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def small_presets():
    return {
        "000": mla.multiheadlatentattention(d_in=48, d_out=40, dl=24, num_head=4, dropout_rate=0.1,
                                            contextlenght=32, seed=1),
        "001": mla.MLA(mla.MLAConfig(d_model=64, num_heads=4, kv_compressed_dim=16,
                                     q_compressed_dim=32, rope_dim=8, seq_len=32, use_bias=True),
                       seed=2),
        "002": mla.DeepSeekV3MLA(mla.ModelArgs(dim=64, n_heads=4, q_lora_rank=24, kv_lora_rank=32,
                                               qk_nope_head_dim=16, qk_rope_head_dim=8,
                                               v_head_dim=12, max_seq_len=64, original_seq_len=16),
                                 seed=3),
        "003": mla.LatentAttention(embed_dim=64, num_heads=4, latent_dim_ratio=0.25, seed=4),
        "004": mla.RopelessMLA(d_model=64, n_heads=4, kv_latent_dim=16, seed=5),
    }


@pytest.mark.parametrize("name", ["000", "001", "002", "003", "004"])
def test_prefill_matches_reference_and_decode_matches_prefill(name):
    layer = small_presets()[name]
    c = layer.config
    x = np.random.default_rng(0).standard_normal((2, 12, c.hidden_size)).astype(np.float32)
    y = mla.Layer.__call__(layer, x)
    assert y.shape == (2, 12, c.out_size) and y.dtype == np.float32
    assert rel(y, reference_output(layer, x)) < 2e-5
    assert rel(mla.Layer.__call__(layer, x, path="naive"), y) < 2e-6
    for path in ("absorbed", "naive"):
        cache = layer.new_cache(batch=2, capacity=12, path=path)
        steps = [mla.Layer.__call__(layer, x[:, :5].copy(), cache=cache)]
        steps += [mla.Layer.__call__(layer, x[:, t:t + 1].copy(), cache=cache) for t in range(5, 12)]
        assert cache.length == 12
        assert rel(np.concatenate(steps, axis=1), y) < 2e-6


def test_001_usage_as_written():
    config = mla.MLAConfig(d_model=256, num_heads=8, kv_compressed_dim=64, q_compressed_dim=128,
                           rope_dim=32, seq_len=256)
    x = np.random.default_rng(1).standard_normal((2, 256, 256)).astype(np.float32)
    out = mla.MLA(config)(x)
    assert out.shape == (2, 256, 256)
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="MLA: 257 tokens exceed seq_len 256"):
        mla.MLA(config)(np.zeros((1, 257, 256), np.float32))


def test_000_context_length_and_output_width():
    attn = mla.multiheadlatentattention(d_in=512, d_out=256, dl=128, num_head=8, dropout_rate=0.1,
                                        contextlenght=16)
    assert attn(np.ones((2, 16, 512), np.float32)).shape == (2, 16, 256)
    with pytest.raises(ValueError, match="MHLA: 17 tokens exceed contextlenght 16"):
        attn(np.ones((1, 17, 512), np.float32))
    assert mla.MHLA is mla.multiheadlatentattention


def test_002_naive_and_absorb_keep_their_cache_like_the_official_module():
    args = mla.ModelArgs(dim=64, n_heads=4, q_lora_rank=0, kv_lora_rank=32, qk_nope_head_dim=16,
                         qk_rope_head_dim=8, v_head_dim=16, max_seq_len=64, original_seq_len=16)
    x = np.random.default_rng(2).standard_normal((1, 10, 64)).astype(np.float32)
    outs = {}
    for impl in ("naive", "absorb"):
        m = mla.DeepSeekV3MLA(args, attn_impl=impl, seed=7)
        first = m(x[:, :6].copy(), start_pos=0)
        rest = [m(x[:, t:t + 1].copy(), start_pos=t) for t in range(6, 10)]
        outs[impl] = np.concatenate([first] + rest, axis=1)
        assert m.cache.length == 10
        with pytest.raises(ValueError, match="start_pos: 3 does not continue the cached 10 tokens"):
            m(x[:, :1].copy(), start_pos=3)
    assert rel(outs["naive"], outs["absorb"]) < 2e-6
    assert rel(outs["absorb"], reference_output(m, x)) < 2e-5
    with pytest.raises(ValueError, match="attn_impl: must be 'naive' or 'absorb', got 'flash'"):
        mla.DeepSeekV3MLA(args, attn_impl="flash")


def test_003_weights_and_stats():
    attn = mla.LatentAttention(embed_dim=64, num_heads=4, latent_dim_ratio=0.25, seed=3)
    inputs = np.random.default_rng(3).standard_normal((2, 9, 64)).astype(np.float32)
    out, weights, stats = attn(inputs, inputs, inputs, need_weights=True)
    assert out.shape == (2, 9, 64) and weights.shape == (2, 4, 9, 9)
    cfg = ref.Config.from_json(json.loads(attn.config.to_json()))
    w_ref = ref.Layer(cfg, {"model.layers.0.self_attn." + k: v for k, v in attn.weights.items()})
    assert np.abs(weights - w_ref.attention_weights(inputs.astype(np.float64)).numpy()).max() < 1e-5
    p = weights.astype(np.float64)
    entropy = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1).mean(axis=(0, 2))
    assert np.allclose(stats["entropy"], entropy)
    assert stats["sparsity"].shape == (4,) and ((0 <= stats["sparsity"]) & (stats["sparsity"] <= 1)).all()
    assert attn(inputs)[1] is None
    with pytest.raises(ValueError, match="LatentAttention: key must be the query"):
        attn(inputs, inputs + 1, inputs)


def test_004_cache_with_past_length_and_absorbed_key():
    model = mla.RopelessMLA(d_model=64, n_heads=4, kv_latent_dim=16, seed=9)
    x = np.random.default_rng(4).standard_normal((2, 70, 64)).astype(np.float32)
    full, _ = model(x)
    out, kv = model(x[:, :3].copy())
    pieces = [out]
    for t in range(3, 70):  # past 64 tokens: the cache grows
        out, kv = model(x[:, t:t + 1].copy(), kv_cache=kv, past_length=t)
        pieces.append(out)
    assert kv.length == 70 and kv.rows().shape == (2, 70, 16)
    assert rel(np.concatenate(pieces, axis=1), full) < 2e-6
    with pytest.raises(ValueError, match="past_length: 5 does not match the cache's 70 tokens"):
        model(x[:, :1].copy(), kv_cache=kv, past_length=5)
    # absorbed_k[h] maps x straight to head h's latent query: its scores give the weights.
    c = model.config
    ak = model.absorbed_k
    assert ak.shape == (4, 64, 16)
    lat = kv.rows()[0]  # (70, R): LayerNormed latents of sequence 0
    q = np.einsum("sd,hdr->hsr", x[0].astype(np.float64), ak)
    scores = np.einsum("hsr,tr->hst", q, lat) * c.softmax_scale
    scores = np.where(np.tril(np.ones((70, 70), bool)), scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    assert np.abs(p - model.attention_weights(x[:1])[0]).max() < 1e-5
