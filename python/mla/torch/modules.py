"""mla.torch.MultiHeadLatentAttention: one MLA layer as a torch.nn.Module.

The weights are nn.Parameters named as in a Hugging Face DeepSeek checkpoint (q_a_proj.weight,
kv_b_proj.weight, ...). Their float32 storage IS the C++ layer's weight memory (zero-copy), so
the optimizer's in-place updates, load_state_dict and DistributedDataParallel's broadcasts are
seen by the inference kernels without a copy. Training runs the C++ training block through
MlaFunction (backward = our hand-written backward); inference (no gradient needed) runs the
fused C++ layer. After .double() / .to(bfloat16) the parameters are new tensors: training
computes with them (float64 exactly; bf16 through float32), and inference copies them into the
C++ layer first.
"""

import threading

import numpy as np
import torch
from torch import nn

from .. import _mla
from ._ops import BlockPool, MlaFunction, run_forward

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def check_input(x, width, what="x"):
    """Raises TypeError / ValueError naming `what` unless x is a CPU floating tensor
    (..., width) with 2 or 3 dimensions."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{what}: expected a float32, float64 or bfloat16 tensor, got {x.dtype}")
    if x.device.type != "cpu":
        raise ValueError(f"{what}: expected a CPU tensor, got one on {x.device}")
    shape = tuple(x.shape)
    if x.dim() not in (2, 3):
        raise ValueError(f"{what}: expected shape (batch, seq, {width}) or (seq, {width}), "
                         f"got {shape}")
    if shape[-1] != width:
        raise ValueError(f"{what}: last dimension is {shape[-1]}, expected {width} "
                         f"(shape {shape})")
    if shape[-2] == 0 or (x.dim() == 3 and shape[0] == 0):
        raise ValueError(f"{what}: empty input {shape}")


class _Tensors(nn.Module):
    """Holds one projection's or norm's `weight` (and `bias`): gives the Hugging Face names."""


class MultiHeadLatentAttention(nn.Module):
    """DeepSeek's Multi-head Latent Attention over the C++ kernels, as an nn.Module.

    MultiHeadLatentAttention(config, seed=0, train_form="naive"): `config` is an mla.Config;
    weights are drawn from `seed` (deterministic) as mla.Layer draws them. `train_form` picks the
    training block's order of products: "naive" (per-head keys and values; needed for
    projection biases and attention dropout) or "absorbed" (W_UK folded into the queries).

    forward(x, cache=None): x (batch, seq, hidden) or (seq, hidden), float32, float64 or
    bfloat16, causal self-attention from position 0; returns (..., out_size) in x's dtype. In
    training mode the config's attention_dropout is applied (torch's generator draws its masks).
    With cache (an mla.LatentCache) the tokens are appended to it and attend to everything
    cached (inference; no gradient).
    """

    def __init__(self, config, seed=0, train_form="naive"):
        super().__init__()
        if not isinstance(config, _mla.Config):
            raise TypeError(f"config: expected an mla.Config, got {type(config).__name__}")
        if train_form not in ("naive", "absorbed"):
            raise ValueError(f"train_form: must be 'naive' or 'absorbed', got '{train_form}'")
        config.validate()
        self.train_form = train_form
        self._attach(_mla.Layer(config, seed, "f32"))
        self._register_parameters()

    def _register_parameters(self):
        """One nn.Parameter per weight, viewing the C++ layer's memory, under its HF name."""
        for name in self._names:
            owner, leaf = name.split(".")
            if not hasattr(self, owner):
                self.add_module(owner, _Tensors())
            param = nn.Parameter(torch.from_numpy(self._core.weight(name)))
            getattr(self, owner).register_parameter(leaf, param)

    @classmethod
    def load(cls, dir, layer=0, train_form="naive"):
        """Layer `layer` of a checkpoint folder (config.json + safetensors, as mla.Layer.load
        reads: Hugging Face DeepSeek checkpoints, sharded, F32/BF16/F16/FP8). A missing path
        raises FileNotFoundError."""
        from ..layer import Layer

        if cls is not MultiHeadLatentAttention:
            raise TypeError(f"{cls.__name__}.load: load with MultiHeadLatentAttention.load, or "
                            f"build a {cls.__name__} and load_state_dict the checkpoint's tensors")
        core = Layer.load(dir, layer=layer)._core
        obj = cls.__new__(cls)
        nn.Module.__init__(obj)
        obj.train_form = train_form
        obj._attach(core)
        obj._register_parameters()
        return obj

    def _attach(self, core):
        """Makes `core` (an mla._mla.Layer) this module's C++ layer, with its training blocks."""
        self._core = core
        self._core_lock = threading.Lock()
        self._names = list(core.weight_names())
        self._core_ptr = {name: core.weight(name).ctypes.data for name in self._names}
        self._pool = BlockPool(core.config, self.train_form == "absorbed")
        self._pool.give(self._pool.take("float32"))  # refuses an impossible train_form now

    def __getstate__(self):
        """Pickling and copy.deepcopy: the C++ layer is rebuilt from the config; the parameters
        travel as tensors and become views of the new layer's memory again."""
        state = self.__dict__.copy()
        for k in ("_core", "_core_lock", "_pool", "_core_ptr"):
            state.pop(k, None)
        state["_config_json"] = self._core.config.to_json()
        return state

    def __setstate__(self, state):
        config = _mla.Config.from_json(state.pop("_config_json"))
        self.__dict__.update(state)
        self._attach(_mla.Layer(config, 0, "f32"))
        with torch.no_grad():
            for name, p in zip(self._names, self._params()):
                if p.dtype == torch.float32:
                    view = torch.from_numpy(self._core.weight(name))
                    view.copy_(p)
                    p.data = view

    @property
    def config(self):
        """The mla.Config of this layer (a copy)."""
        return self._core.config

    def weight_names(self):
        """The Hugging Face names of the weights, in the order the kernels take them."""
        return list(self._names)

    def _params(self):
        return [getattr(getattr(self, n.split(".")[0]), n.split(".")[1]) for n in self._names]

    def extra_repr(self):
        c = self.config
        return (f"hidden_size={c.hidden_size}, num_heads={c.num_heads}, "
                f"q_lora_rank={c.q_lora_rank}, kv_lora_rank={c.kv_lora_rank}, "
                f"qk_rope_head_dim={c.qk_rope_head_dim}, train_form={self.train_form}")

    def _sync_core(self):
        """Makes the C++ layer see the parameters (a no-op while they alias its memory). A
        float32 parameter that was replaced (e.g. .double() then .float()) is copied in and
        becomes a view of the layer's memory again; other dtypes are copied on every call."""
        for name, p in zip(self._names, self._params()):
            if p.data_ptr() == self._core_ptr[name] and p.dtype == torch.float32:
                continue
            view = self._core.weight(name)
            view[...] = p.detach().to(torch.float32).numpy()
            if p.dtype == torch.float32 and p.device.type == "cpu":
                p.data = torch.from_numpy(view)

    def _infer(self, x3, cache):
        """The fused C++ layer (no autograd): x3 (B, S, d) float32 contiguous."""
        with self._core_lock:
            self._sync_core()
            y = self._core.forward(x3.numpy(), False, cache, None, 0, None)
        return torch.from_numpy(y)

    def _attention(self, x3, cache=None):
        """(B, S, d) in any float dtype -> (B, S, out_size) in the compute dtype."""
        params = self._params()
        if cache is not None:  # decoding is inference: the result has no grad_fn
            with torch.no_grad():
                return self._infer(x3.detach().to(torch.float32).contiguous(), cache)
        wide = torch.float64 if params[0].dtype == torch.float64 else torch.float32
        needs_grad = torch.is_grad_enabled() and (x3.requires_grad or
                                                  any(p.requires_grad for p in params))
        dropout = self.training and self.config.attention_dropout > 0
        if not needs_grad and not dropout and wide == torch.float32:
            return self._infer(x3.detach().to(torch.float32).contiguous(), None)
        key = int(torch.randint(0, 2**62, ()).item()) if dropout else 0
        xw = x3.to(wide).contiguous()
        weights = [p.to(wide) for p in params]
        if needs_grad:
            return MlaFunction.apply(self._pool, dropout, key, xw, *weights)
        return run_forward(self._pool, xw, weights, dropout, key)

    def forward(self, x, cache=None):
        check_input(x, self.config.hidden_size)
        if cache is not None and not isinstance(cache, _mla.LatentCache):
            raise TypeError(f"cache: expected an mla.LatentCache, got {type(cache).__name__}")
        x3 = x if x.dim() == 3 else x.unsqueeze(0)
        y = self._attention(x3, cache).to(x.dtype)
        return y if x.dim() == 3 else y.squeeze(0)

    def new_cache(self, batch, capacity):
        """An empty mla.LatentCache for step-by-step decoding with forward(x, cache=...)."""
        return _mla.LatentCache(self.config, batch, capacity)

    def attention_weights(self, x):
        """Causal attention probabilities (batch, heads, seq, seq) of x, without dropout and
        without gradient (the inference layer's)."""
        check_input(x, self.config.hidden_size)
        x3 = x if x.dim() == 3 else x.unsqueeze(0)
        with self._core_lock:
            self._sync_core()
            p = self._core.attention_weights(
                np.ascontiguousarray(x3.detach().to(torch.float32).numpy()), False, 0)
        p = torch.from_numpy(p)
        return p if x.dim() == 3 else p.squeeze(0)

