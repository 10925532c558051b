"""Inputs are read in place (the address C++ read from is the array's own), outputs are written
straight into `out`, and weights are views of the layer's memory; other inputs are copied once
and counted."""
import numpy as np
import torch

import mla


def layer():
    return mla.Layer(mla.Config.preset("tiny"), seed=1)


def test_float32_numpy_and_torch_inputs_are_not_copied():
    m = layer()
    x = np.random.default_rng(0).standard_normal((2, 5, 64)).astype(np.float32)
    copies = mla.stats()["input_copies"]
    y = m(x)
    assert mla.input_address() == x.ctypes.data
    t = torch.from_numpy(x.copy())
    yt = m(t)
    assert mla.input_address() == t.data_ptr()
    assert mla.stats()["input_copies"] == copies
    assert np.array_equal(y, yt)


def test_bf16_inputs_are_read_in_place():
    m = layer()
    t = torch.randn(1, 4, 64).to(torch.bfloat16)
    copies = mla.stats()["input_copies"]
    y = m(t)
    assert mla.input_address() == t.data_ptr()
    assert mla.stats()["input_copies"] == copies
    # The same values given as float32 give the same output: the bits were read correctly.
    assert np.array_equal(y, m(t.to(torch.float32)))
    bits = t.view(torch.int16).numpy()
    try:
        import ml_dtypes  # optional: NumPy's own bfloat16 dtype
    except ImportError:
        return
    arr = bits.view(ml_dtypes.bfloat16)
    assert np.array_equal(m(arr), y)
    assert mla.input_address() == arr.ctypes.data


def test_other_inputs_are_copied_and_counted():
    m = layer()
    x = np.random.default_rng(1).standard_normal((2, 5, 64))
    copies = mla.stats()["input_copies"]
    y64 = m(x)  # float64
    y_t = m(x.astype(np.float32)[:, ::1, :].transpose(1, 0, 2).copy().transpose(1, 0, 2))  # strided
    assert mla.stats()["input_copies"] == copies + 2
    assert np.allclose(y64, m(x.astype(np.float32)), atol=1e-6)
    assert np.allclose(y_t, y64, atol=1e-6)


def test_out_receives_the_result_in_place():
    m = layer()
    x = np.random.default_rng(2).standard_normal((1, 3, 64)).astype(np.float32)
    out = np.empty((1, 3, 64), np.float32)
    got = m(x, out=out)
    assert np.shares_memory(got, out)
    assert np.array_equal(out, m(x))


def test_weights_are_writable_views():
    m = layer()
    w = m.weights["o_proj.weight"]
    assert w.shape == (64, 64) and w.flags.writeable
    assert np.shares_memory(w, m.weight("o_proj.weight"))
    x = np.random.default_rng(3).standard_normal((1, 3, 64)).astype(np.float32)
    before = m(x)
    w *= 2.0  # in place: the layer computes with the doubled matrix
    assert np.allclose(m(x), 2.0 * before, rtol=1e-5, atol=1e-6)
    m.set_weight("o_proj.weight", np.zeros((64, 64)))
    assert not m(x).any()
    del m  # the view keeps the layer's memory alive
    assert w.sum() == 0.0


def test_cache_rows_are_a_view():
    m = layer()
    cache = m.new_cache(batch=1, capacity=8)
    m(np.ones((1, 2, 64), np.float32), cache=cache)
    rows = cache.rows()
    assert rows.shape == (1, 8, cache.row_width)
    assert np.abs(rows[0, :2]).sum() > 0 and not rows[0, 2:].any()
