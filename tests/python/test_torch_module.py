"""mla.torch: the nn.Module over the C++ kernels. Gradients of the C++ backward against
torch.autograd through the independent PyTorch reference (tests/reference/mla_reference.py,
naive form), gradcheck in float64, state_dict round trip, dropout in train mode only, bf16,
threads sharing a module, the torch ops in a profile, and the error messages."""
import json
import threading

import pytest
import torch

import mla
import mla_reference as ref
from mla.torch import MlaFunction, MultiHeadLatentAttention


def configs():
    """Every branch of the block: query compression or not, RMSNorm / LayerNorm / no norm,
    RoPE or not, projection biases, o_proj wider than hidden."""
    return {
        "tiny": mla.Config.preset("tiny"),
        "no_q_lora_bias_ropeless": mla.Config(
            hidden_size=24, num_heads=3, q_lora_rank=0, kv_lora_rank=8, qk_nope_head_dim=8,
            qk_rope_head_dim=0, v_head_dim=8, latent_norm="none", projection_bias=True),
        "layernorm_out": mla.Config(
            hidden_size=16, num_heads=2, q_lora_rank=12, kv_lora_rank=8, qk_nope_head_dim=4,
            qk_rope_head_dim=4, v_head_dim=6, latent_norm="layernorm", output_size=20),
    }


def reference(module):
    """The reference layer on the module's own parameters (autograd flows into them)."""
    cfg = ref.Config.from_json(json.loads(module.config.to_json()))
    layer = ref.Layer(cfg, {}, dtype=torch.float64)
    layer.w = dict(module.named_parameters())
    return layer


def grads(module, x, forward):
    module.zero_grad()
    x = x.clone().requires_grad_(True)
    y = forward(x)
    g = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    (y * g).sum().backward()
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize("name", list(configs()))
@pytest.mark.parametrize("form", ["naive", "absorbed"])
def test_gradients_equal_autograd_through_the_reference_float64(name, form):
    c = configs()[name]
    if form == "absorbed" and c.projection_bias:
        pytest.skip("the absorbed form refuses projection biases")
    m = MultiHeadLatentAttention(c, seed=3, train_form=form).double()
    x = torch.randn(2, 5, c.hidden_size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y, dx, dw = grads(m, x, m)
    y_ref, dx_ref, dw_ref = grads(m, x, reference(m).naive)
    # Exact in double but for the rotary table, which training shares with inference in float32
    # (relative 1e-7 on cos/sin); gradcheck below checks the backward in pure float64.
    tol = 1e-12 if c.qk_rope_head_dim == 0 else 1e-6

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max())

    assert rel(y, y_ref) < tol
    assert rel(dx, dx_ref) < tol
    assert set(dw) == set(m.weight_names())
    for n in dw:
        assert rel(dw[n], dw_ref[n]) < tol, n


@pytest.mark.parametrize("name", list(configs()))
def test_gradcheck_float64(name):
    c = configs()[name]
    if name == "tiny":  # as small as possible: gradcheck perturbs every weight
        c = mla.Config(hidden_size=12, num_heads=2, q_lora_rank=6, kv_lora_rank=6,
                       qk_nope_head_dim=4, qk_rope_head_dim=4, v_head_dim=4)
    m = MultiHeadLatentAttention(c, seed=5).double()
    params = [p.detach().clone().requires_grad_(True) for p in m._params()]
    x = torch.randn(1, 3, c.hidden_size, dtype=torch.float64, requires_grad=True)
    fn = lambda x, *w: MlaFunction.apply(m._pool, False, 0, x, *w)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(configs()))
def test_float32_gradients_within_tolerance_of_float64_reference(name):
    c = configs()[name]
    m = MultiHeadLatentAttention(c, seed=4)
    x = torch.randn(2, 6, c.hidden_size)
    y, dx, dw = grads(m, x, m)
    m64 = MultiHeadLatentAttention(c, seed=4).double()
    y_ref, dx_ref, dw_ref = grads(m64, x.double(), reference(m64).naive)

    def rel(a, b):
        return float((a.double() - b).abs().max() / b.abs().max())

    assert rel(y, y_ref) < 1e-5
    assert rel(dx, dx_ref) < 1e-4
    for n in dw:
        assert rel(dw[n], dw_ref[n]) < 1e-4, n


def test_parameters_are_the_layers_memory_and_state_dict_round_trips(tmp_path):
    c = mla.Config.preset("tiny")
    a, b = MultiHeadLatentAttention(c, seed=1), MultiHeadLatentAttention(c, seed=2)
    assert list(a.state_dict()) == a.weight_names()
    assert "q_a_proj.weight" in a.state_dict() and "kv_a_proj_with_mqa.weight" in a.state_dict()
    x = torch.randn(1, 7, 64)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
        torch.save(a.state_dict(), tmp_path / "attn.pt")
        b.load_state_dict(torch.load(tmp_path / "attn.pt"))
        assert torch.equal(a(x), b(x))       # inference path (C++ layer) sees the loaded weights
    assert torch.allclose(a(x), b(x), atol=1e-6)  # and so does the training path
    # An optimizer step changes the C++ layer's weights in place.
    opt = torch.optim.SGD(b.parameters(), lr=1e-3)
    b(x).square().sum().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
        r = reference(b)
        r.w = {n: p.double() for n, p in r.w.items()}
        assert torch.allclose(b(x), r.naive(x.double()).float(), rtol=1e-4, atol=1e-4)


def test_deepcopy_and_pickle_keep_weights_and_aliasing(tmp_path):
    import copy

    m = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=3)
    x = torch.randn(1, 5, 64)
    twin = copy.deepcopy(m)
    torch.save(m, tmp_path / "whole.pt")
    loaded = torch.load(tmp_path / "whole.pt")
    with torch.no_grad():
        for other in (twin, loaded):
            assert torch.equal(other(x), m(x))
            other.o_proj.weight.mul_(2)  # in place: the copy's C++ layer sees it, m does not
            assert not torch.allclose(other(x), m(x))
            assert other.o_proj.weight.data_ptr() == other._core_ptr["o_proj.weight"]


def test_load_a_checkpoint_folder(tmp_path):
    layer = mla.Layer(mla.Config.preset("tiny"), seed=9)
    layer.save(tmp_path / "ckpt")
    m = MultiHeadLatentAttention.load(tmp_path / "ckpt", layer=0)
    x = torch.randn(2, 5, 64)
    assert torch.allclose(m(x), torch.from_numpy(layer(x.numpy())), atol=1e-6)
    assert m(x).grad_fn is not None
    with pytest.raises(FileNotFoundError):
        MultiHeadLatentAttention.load(tmp_path / "absent")


def test_double_and_eval_paths_agree_with_a_saved_checkpoint(tmp_path):
    m = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=7)
    m.double()  # new tensors: the C++ inference layer gets a float32 copy when it runs
    x = torch.randn(2, 4, 64)
    with torch.no_grad():
        m.float()
        y_eval = m(x)
    assert m.o_proj.weight.data_ptr() == m._core_ptr["o_proj.weight"]  # aliases the layer again
    m.double()
    y64 = m(x.double())
    assert y64.dtype == torch.float64
    assert torch.allclose(y_eval.double(), y64, atol=1e-5)


def test_dropout_only_in_train_mode_and_reproducible_from_torch_seed():
    c = mla._mla.preset_mhla(32, 32, 16, 4, 0.5, 64)
    m = mla.torch.multiheadlatentattention(32, 32, 16, 4, 0.5, 64)
    x = torch.randn(2, 8, 32)
    m.train()
    torch.manual_seed(0)
    y1 = m(x)
    torch.manual_seed(0)
    y2 = m(x)
    y3 = m(x)
    assert torch.equal(y1, y2) and not torch.allclose(y1, y3)
    m.eval()
    e1, e2 = m(x), m(x)
    assert torch.equal(e1, e2)
    plain = MultiHeadLatentAttention(c)  # same seed, same weights: eval = no dropout at all
    plain.load_state_dict(m.state_dict())
    assert torch.allclose(e1, plain.eval()(x), atol=1e-6)
    assert not torch.allclose(e1, y1)
    # Train-mode gradients go through the same dropout masks (finite differences in float64).
    md = mla.torch.multiheadlatentattention(12, 12, 6, 2, 0.5, 64).double().train()
    params = [p.detach().clone().requires_grad_(True) for p in md._params()]
    xd = torch.randn(1, 4, 12, dtype=torch.float64, requires_grad=True)
    fn = lambda x, *w: MlaFunction.apply(md._pool, True, 1234, x, *w)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (xd, *params), eps=1e-6, atol=1e-7)


def test_bfloat16_inputs_and_module():
    m = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=1)
    x = torch.randn(2, 5, 64)
    y = m(x)
    xb = x.to(torch.bfloat16).requires_grad_(True)
    yb = m(xb)
    assert yb.dtype == torch.bfloat16
    assert float((yb.float() - y).abs().max() / y.abs().max()) < 0.03
    yb.float().sum().backward()
    assert xb.grad.dtype == torch.bfloat16
    mb = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=1).to(torch.bfloat16)
    yb2 = mb(xb)
    yb2.float().sum().backward()
    assert mb.o_proj.weight.grad.dtype == torch.bfloat16
    assert float((yb2.float() - y).abs().max() / y.abs().max()) < 0.05
    with torch.no_grad():
        assert float((mb(xb).float() - y).abs().max() / y.abs().max()) < 0.05


def test_decode_through_a_latent_cache_equals_prefill():
    m = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=1)
    x = torch.randn(2, 9, 64)
    full = m(x).detach()
    cache = m.new_cache(batch=2, capacity=16)
    parts = [m(x[:, :5], cache=cache)] + [m(x[:, t:t + 1], cache=cache) for t in range(5, 9)]
    assert cache.length == 9
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


def test_module_shared_by_threads():
    m = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=1)
    xs = [torch.randn(2, 6 + i, 64, generator=torch.Generator().manual_seed(i)) for i in range(6)]

    def run(x):
        y = m(x)
        return (y.detach(),) + torch.autograd.grad(y.square().sum(), [m.kv_b_proj.weight])

    expected = [run(x) for x in xs]
    results = [None] * len(xs)
    errors = []

    def work(i):
        try:
            for _ in range(3):
                results[i] = run(xs[i])
                with torch.no_grad():
                    assert torch.allclose(m(xs[i]), expected[i][0], atol=1e-5)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # Not bit-equal: a thread's OpenMP team may differ in size from the main thread's, and the
    # GEMMs may split their sums differently; corruption would be far above rounding.
    for got, want in zip(results, expected):
        for a, b in zip(got, want):
            assert float((a - b).abs().max() / b.abs().max()) < 1e-5


def test_ops_appear_in_profiles_by_name():
    m = MultiHeadLatentAttention(mla.Config.preset("tiny"))
    x = torch.randn(1, 4, 64, requires_grad=True)
    with torch.profiler.profile() as prof:
        m(x).sum().backward()
    names = {e.name for e in prof.events()}
    assert "mla::attention" in names and "mla::attention_backward" in names


def test_activation_blocks_are_reused_not_leaked():
    from mla.torch import _ops

    m = MultiHeadLatentAttention(mla.Config.preset("tiny"))
    x = torch.randn(2, 5, 64, requires_grad=True)
    made = []
    take = _ops.BlockPool.take

    def counting_take(pool, dtype):
        made.append(len(pool._free[dtype]) == 0)
        return take(pool, dtype)

    _ops.BlockPool.take = counting_take
    try:
        for _ in range(6):
            m(x).sum().backward()  # graph freed after backward: the block goes back
        for _ in range(6):
            m(x)                   # output dropped without backward: freed with the graph
    finally:
        _ops.BlockPool.take = take
    assert sum(made) <= 1, made   # one new block at most, then always reused
    assert _ops._live == {}
    assert len(m._pool._free["float32"]) <= m._pool.keep


def test_traced_module_replays_with_gradients():
    m = MultiHeadLatentAttention(mla.Config.preset("tiny"))
    x = torch.randn(1, 4, 64, requires_grad=True)
    traced = torch.jit.trace(m, x, check_trace=False)
    assert any(n.kind() == "prim::PythonOp" for n in traced.graph.nodes())  # MlaFunction
    x2 = torch.randn(1, 4, 64, requires_grad=True)
    y = traced(x2)
    y.sum().backward()
    x3 = x2.detach().clone().requires_grad_(True)
    m(x3).sum().backward()
    assert torch.allclose(y, m(x2), atol=1e-6) and torch.allclose(x2.grad, x3.grad, atol=1e-6)


def test_bad_inputs_raise_with_the_message():
    m = MultiHeadLatentAttention(mla.Config.preset("tiny"))
    with pytest.raises(ValueError, match=r"x: last dimension is 65, expected 64 \(shape \(1, 3, 65\)\)"):
        m(torch.zeros(1, 3, 65))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, seq, 64\) or \(seq, 64\), got \(64,\)"):
        m(torch.zeros(64))
    with pytest.raises(TypeError, match="x: expected a float32, float64 or bfloat16 tensor, got torch.int64"):
        m(torch.zeros(1, 3, 64, dtype=torch.int64))
    with pytest.raises(TypeError, match="x: expected a torch.Tensor, got list"):
        m([[0.0] * 64])
    with pytest.raises(TypeError, match="cache: expected an mla.LatentCache, got dict"):
        m(torch.zeros(1, 3, 64), cache={})
    with pytest.raises(TypeError, match="config: expected an mla.Config, got dict"):
        MultiHeadLatentAttention({})
    with pytest.raises(ValueError, match="train_form: must be 'naive' or 'absorbed', got 'fast'"):
        MultiHeadLatentAttention(mla.Config.preset("tiny"), train_form="fast")
    with pytest.raises(ValueError, match="mla_form absorbed: projection_bias and attention_dropout "
                       "need the naive form"):
        MultiHeadLatentAttention(configs()["no_q_lora_bias_ropeless"], train_form="absorbed")
    cache = m.new_cache(batch=1, capacity=2)
    with pytest.raises(ValueError, match="cache"):
        m(torch.zeros(1, 3, 64), cache=cache)
