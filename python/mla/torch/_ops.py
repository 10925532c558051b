"""The torch ops `mla::attention` / `mla::attention_backward` and the autograd Function over them.

The ops run the C++ training block (src/train: MlaBlock forward keeping its activations, and its
hand-written backward) on the storage of the tensors they are given: inputs, outputs, weights and
gradients are NumPy views of torch memory, never copies. The activations a backward needs live
inside a C++ TrainBlock, which the ops name by an integer handle (torch schemas cannot carry a
Python object); registered with torch.library so that profiles and traces show them by name.
"""

import itertools
import threading
import weakref

import torch

from .. import _mla

_lib = torch.library.Library("mla", "DEF")
_lib.define("attention(Tensor x, Tensor[] weights, int block, bool training, int dropout_key)"
            " -> Tensor")
_lib.define("attention_backward(Tensor grad_output, Tensor x, Tensor[] weights, int block)"
            " -> Tensor[]")

_live = {}  # handle -> TrainBlock, only while an op that uses it runs
_handles = itertools.count(1)
_live_lock = threading.Lock()


class _Registered:
    """Makes a TrainBlock reachable from the ops by handle for the duration of a `with`."""

    def __init__(self, block):
        self.block = block

    def __enter__(self):
        with _live_lock:
            self.handle = next(_handles)
            _live[self.handle] = self.block
        return self.handle

    def __exit__(self, *exc):
        with _live_lock:
            del _live[self.handle]


def run_forward(pool, x, weights, training, dropout_key):
    """The op without autograd (inference, or nothing needs a gradient)."""
    dtype = "float64" if x.dtype == torch.float64 else "float32"
    block = pool.take(dtype)
    try:
        with _Registered(block) as h:
            return torch.ops.mla.attention(x, list(weights), h, training, dropout_key)
    finally:
        pool.give(block)


def _np(t):
    return t.detach().numpy()


def _attention_cpu(x, weights, block, training, dropout_key):
    b = _live[block]
    batch, seq, _ = x.shape
    out = x.new_empty((batch, seq, b.config.out_size))
    b.forward(_np(out), _np(x), [_np(w) for w in weights], batch, seq, training, dropout_key)
    return out


def _attention_backward_cpu(grad_output, x, weights, block):
    b = _live[block]
    dx = torch.zeros_like(x)
    grads = [torch.zeros_like(w) for w in weights]
    b.backward(_np(dx), [_np(g) for g in grads], _np(grad_output), _np(x),
               [_np(w) for w in weights])
    return [dx] + grads


_lib.impl("attention", _attention_cpu, "CPU")
_lib.impl("attention_backward", _attention_backward_cpu, "CPU")


class BlockPool:
    """TrainBlocks of one config and dtype, reused across steps (their activation buffers grow to
    the largest call once, then steps allocate nothing). Thread-safe: each forward takes a block
    of its own and gives it back after its backward (or at once when no backward will follow)."""

    def __init__(self, config, absorbed, keep=4):
        self.config, self.absorbed, self.keep = config, absorbed, keep
        self._free = {"float32": [], "float64": []}
        self._lock = threading.Lock()

    def take(self, dtype):
        with self._lock:
            if self._free[dtype]:
                return self._free[dtype].pop()
        return _mla.TrainBlock(self.config, dtype, self.absorbed)

    def give(self, block):
        with self._lock:
            free = self._free[block.dtype]
            if len(free) < self.keep:
                free.append(block)


class MlaFunction(torch.autograd.Function):
    """y = MLA(x; weights) with the C++ backward. Inputs: the pool, training flag, dropout key,
    then x (B, S, d) and the weights in weight_names() order, all float32 or all float64."""

    @staticmethod
    def forward(ctx, pool, training, dropout_key, x, *weights):
        dtype = "float64" if x.dtype == torch.float64 else "float32"
        block = pool.take(dtype)
        with _Registered(block) as h:
            out = torch.ops.mla.attention(x, list(weights), h, training, dropout_key)
        ctx.block = block
        # The block returns to the pool when autograd frees the graph (after backward, or when
        # the output is dropped), so retain_graph and gradcheck can run backward again.
        weakref.finalize(ctx, pool.give, block)
        ctx.save_for_backward(x, *weights)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        x, *weights = ctx.saved_tensors
        with _Registered(ctx.block) as h:
            grads = torch.ops.mla.attention_backward(grad_output.contiguous(), x, weights, h)
        return (None, None, None) + tuple(grads)
