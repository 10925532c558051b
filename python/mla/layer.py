"""mla.Layer: the general layer over the C++ extension, taking NumPy arrays or CPU torch tensors.

Inputs go to C++ without a copy when they are C-contiguous float32 (NumPy, or torch through
Tensor.numpy(), which shares memory) or bf16 (torch.bfloat16, or an ml_dtypes bfloat16 NumPy
array, passed as its 16-bit pattern and widened once inside the layer). Anything else is converted
to a float32 copy first, and counted in stats()["input_copies"].
"""

import errno
import os

import numpy as np

from . import _mla

_stats = {"input_copies": 0}


def stats():
    """Counters of the Python layer: input_copies = inputs that had to be converted."""
    return dict(_stats)


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def as_input(x):
    """Returns (array, is_bf16) for the extension: the caller's memory whenever possible."""
    if _is_torch(x):
        import torch  # only when a tensor is given: importing torch is slow

        if x.device.type != "cpu":
            raise ValueError(f"x: expected a CPU tensor, got one on {x.device}")
        t = x.detach()
        if t.dtype == torch.bfloat16 and t.is_contiguous():
            return t.view(torch.int16).numpy(), True
        if t.dtype == torch.float32 and t.is_contiguous():
            return t.numpy(), False
        _stats["input_copies"] += 1
        return np.ascontiguousarray(t.to(torch.float32).numpy()), False
    if isinstance(x, np.ndarray):
        if x.dtype.name == "bfloat16" and x.flags.c_contiguous:
            return x.view(np.uint16), True
        if x.dtype == np.float32 and x.flags.c_contiguous:
            return x, False
    _stats["input_copies"] += 1
    try:
        return np.ascontiguousarray(np.asarray(x, dtype=np.float32)), False
    except (TypeError, ValueError) as e:
        raise ValueError(f"x: cannot be read as a float32 array: {e}") from None


class Layer:
    """One MLA layer: random weights from `seed`, or Layer.load(dir) from a checkpoint folder.

    layer(x) runs a causal prefill of x (batch, seq, hidden) or (seq, hidden) and returns
    (..., config.out_size) float32. With cache=LatentCache(...) (absorbed) or NaiveKvCache(...)
    (naive) the new tokens are appended to the cache and attend to everything in it.
    """

    def __init__(self, config, seed=0, weight_dtype="f32", _core=None):
        if _core is None:
            if not isinstance(config, _mla.Config):
                raise ValueError("config: expected mla.Config")
            _core = _mla.Layer(config, seed, weight_dtype)
        self._core = _core

    @classmethod
    def load(cls, dir, layer=0, weight_dtype="f32"):
        """Layer `layer` of a checkpoint folder (config.json + *.safetensors). A missing folder
        or config.json raises FileNotFoundError; a bad file raises ValueError naming it."""
        config_path = os.path.join(str(dir), "config.json")
        if not os.path.isfile(config_path):
            missing = str(dir) if not os.path.isdir(str(dir)) else config_path
            raise FileNotFoundError(errno.ENOENT, "Layer.load: no such checkpoint file or folder",
                                    missing)
        obj = cls.__new__(cls)
        Layer.__init__(obj, None, _core=_mla.Layer.load(str(dir), layer, weight_dtype))
        return obj

    def save(self, dir, dtype="f32"):
        """Writes dir/config.json and dir/model.safetensors; Layer.load(dir) reads them back."""
        self._core.save(str(dir), dtype)

    @property
    def config(self):
        """The layer's mla.Config (a copy)."""
        return self._core.config

    def __call__(self, x, cache=None, path=None, start_position=0, out=None):
        arr, bf16 = as_input(x)
        return self._core.forward(arr, bf16, cache, path, start_position, out)

    forward = __call__

    def new_cache(self, batch, capacity, path="absorbed"):
        """An empty cache for step-by-step decoding: LatentCache (absorbed) or NaiveKvCache."""
        if path == "absorbed":
            return _mla.LatentCache(self.config, batch, capacity)
        if path == "naive":
            return _mla.NaiveKvCache(self.config, batch, capacity)
        raise ValueError(f"path: must be 'absorbed' or 'naive', got '{path}'")

    def attention_weights(self, x, start_position=0):
        """Causal attention probabilities (batch, heads, seq, seq) of a prefill of x."""
        arr, bf16 = as_input(x)
        return self._core.attention_weights(arr, bf16, start_position)

    def weight_names(self):
        """The Hugging Face names of the weight tensors (q_a_proj.weight, ...)."""
        return self._core.weight_names()

    @property
    def weights(self):
        """Hugging Face name -> writable float32 NumPy view of the layer's own weight memory."""
        return {name: self._core.weight(name) for name in self._core.weight_names()}

    def weight(self, name):
        """A writable float32 NumPy view of one weight tensor of the layer's memory."""
        return self._core.weight(name)

    def set_weight(self, name, value):
        """Copies `value` (any array of the tensor's shape) into the layer."""
        self._core.set_weight(name, np.asarray(value, dtype=np.float32))
