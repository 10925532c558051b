"""Bad input raises ValueError with the library's message (never a crash)."""
import numpy as np
import pytest

import mla


def layer():
    return mla.Layer(mla.Config.preset("tiny"), seed=1)


def bad_config():
    c = mla.Config.preset("tiny")
    c.kv_lora_rank = -1  # fields are writable; every user validates before use
    return c


@pytest.mark.parametrize("call, message", [
    (lambda: mla.LatentCache(bad_config(), 1, 4), "config: kv_lora_rank: must be positive, got -1"),
    (lambda: mla.NaiveKvCache(bad_config(), 1, 4), "config: kv_lora_rank: must be positive, got -1"),
    (lambda: mla.Layer(bad_config()), "config: kv_lora_rank: must be positive, got -1"),
    (lambda: mla.LatentCache(mla.Config.preset("tiny"), 0, 4), "cache: batch must be at least 1"),
    (lambda: mla.Config(hidden_size=0, num_heads=4, kv_lora_rank=8, qk_nope_head_dim=8,
                        v_head_dim=8), "config: hidden_size: must be positive, got 0"),
    (lambda: mla.Config(hidden_size=64, colour=3), "Config: unknown field 'colour'"),
    (lambda: mla.Config.from_json('{"hidden_size": 64}'), "config: num_attention_heads: missing"),
    (lambda: mla.Config.from_json('{"hidden_size": 64, "num_attention_heads": 4, '
                                  '"kv_lora_rank": 8, "qk_nope_head_dim": 8, "qk_rope_head_dim": 0,'
                                  ' "v_head_dim": 8, "latent_norm": "batch"}'),
     "config: latent_norm: must be one of rmsnorm, layernorm, none, got 'batch'"),
    (lambda: mla.MLAConfig(256, 8, 64, 128, 31, 256),
     "MLAConfig: rope_dim must be even and not negative, got 31"),
    (lambda: mla.multiheadlatentattention(512, 500, 256, 8, 0.1, 128),
     r"MHLA: d_out \(500\) must be divisible by num_head \(8\)"),
    (lambda: mla.LatentAttention(512, 8, 1.5), r"LatentAttention: latent_dim_ratio must be in \(0, 1\], got 1.5"),
    (lambda: mla.RopelessMLA(64, 0, 16), "RopelessMLA: n_heads must be positive, got 0"),
    (lambda: mla.DeepSeekV3MLA(mla.ModelArgs(qk_rope_head_dim=7)),
     r"ModelArgs: config: qk_rope_head_dim: must be even \(RoPE rotates pairs\), got 7"),
    (lambda: layer()(np.zeros((2, 3, 65), np.float32)),
     r"x: last dimension is 65, expected 64 \(shape \(2, 3, 65\)\)"),
    (lambda: layer()(np.zeros((64,), np.float32)), r"x: expected shape \(batch, seq, 64\) or \(seq, 64\), got \(64,\)"),
    (lambda: layer()(np.zeros((1, 0, 64), np.float32)), r"x: empty input \(1, 0, 64\)"),
    (lambda: layer()(np.zeros((1, 2, 64), np.float32), out=np.zeros((1, 2, 63), np.float32)),
     r"out: expected shape \(1, 2, 64\), got \(1, 2, 63\)"),
    (lambda: layer()(np.zeros((1, 2, 64), np.float32), out=np.zeros((1, 2, 64))),
     r"out: expected a float32 NumPy array of shape \(1, 2, 64\)"),
    (lambda: layer()(np.zeros((1, 2, 64), np.float32), path="fast"),
     "path: must be 'absorbed' or 'naive', got 'fast'"),
    (lambda: layer()(np.zeros((1, 2, 64), np.float32), start_position=-1),
     "start_position: must not be negative, got -1"),
    (lambda: layer()(np.zeros((1, 2, 64), np.float32), cache=3),
     "cache: expected mla.LatentCache, mla.NaiveKvCache or None"),
    (lambda: layer().weight("wq"), r"weights: no tensor 'wq' in this layer \(it has: q_a_proj.weight"),
    (lambda: layer().set_weight("o_proj.weight", np.zeros((3, 3))),
     r"weights: o_proj.weight: expected shape \[64, 64\], got \[3, 3\]"),
    (lambda: mla.Layer(mla.Config.preset("tiny"), weight_dtype="fp8"),
     "weight_dtype: must be 'f32' or 'bf16', got 'fp8'"),
    (lambda: mla.Config.preset("gpt"), "preset: unknown name 'gpt'"),
])
def test_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cache_errors_leave_the_cache_usable():
    m = layer()
    cache = m.new_cache(batch=1, capacity=4)
    m(np.ones((1, 3, 64), np.float32), cache=cache)
    with pytest.raises(ValueError, match="cache: appending 2 tokens to 3 cached would exceed capacity 4"):
        m(np.ones((1, 2, 64), np.float32), cache=cache)
    with pytest.raises(ValueError, match="forward: batch 2 does not match the cache's batch 1"):
        m(np.ones((2, 1, 64), np.float32), cache=cache)
    with pytest.raises(ValueError, match="path: a LatentCache serves the absorbed path, not 'naive'"):
        m(np.ones((1, 1, 64), np.float32), cache=cache, path="naive")
    assert cache.length == 3
    m(np.ones((1, 1, 64), np.float32), cache=cache)
    assert cache.length == 4
    with pytest.raises(ValueError, match="path: must be 'absorbed' or 'naive', got 'x'"):
        m.new_cache(1, 4, path="x")


def test_bf16_layer_weights_are_not_writable():
    m = mla.Layer(mla.Config.preset("tiny"), weight_dtype="bf16")
    with pytest.raises(ValueError, match="mutable_weights: the layer computes with bf16 copies"):
        m.weights


def test_concurrent_calls_on_one_layer_are_serialised():
    # One layer's workspace serves one call at a time (a lock inside, taken without the GIL):
    # threads sharing a layer get the serial results, and nothing crashes.
    import threading

    m = layer()
    xs = [np.random.default_rng(i).standard_normal((2, 7, 64)).astype(np.float32) for i in range(8)]
    expected = [m(x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(5):
            got[i] = m(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e, g in zip(expected, got):
        assert np.array_equal(e, g)


def test_load_of_a_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint file or folder") as e:
        mla.Layer.load(tmp_path / "absent")
    assert e.value.filename == str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError) as e:
        mla.Layer.load(tmp_path)  # the folder exists, its config.json does not
    assert e.value.filename == str(tmp_path / "config.json")
