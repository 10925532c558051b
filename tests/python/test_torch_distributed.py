"""torch.distributed with mla.torch: two processes on loopback (this one and a worker) (gloo backend,
DistributedDataParallel, tests/python/ddp_worker.py) train the module on half a batch each; their
gradients and updated weights equal one process trained on the whole batch."""
import os
import socket
import subprocess
import sys

import torch

import mla
from mla.torch import MultiHeadLatentAttention

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ddp_worker  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_equal_one_process_over_the_whole_batch(tmp_path):
    port = str(free_port())
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, WORLD_SIZE="2",
               RANK="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(mla.__file__)),
                                         env.get("PYTHONPATH", "")])
    worker = subprocess.Popen([sys.executable, os.path.join(HERE, "ddp_worker.py"),
                               str(tmp_path)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    try:
        ddp_worker.main(str(tmp_path), rank=0, world=2)  # rank 0 in this process
    finally:
        out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, out

    model = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=1)  # rank 0's weights
    x, target = ddp_worker.batch()
    grads = ddp_worker.train(model, x, target)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name, p in model.state_dict().items():
        for r in ranks:
            assert torch.allclose(r["grads"][name], grads[name], rtol=1e-4, atol=1e-6), name
            assert torch.allclose(r["weights"][name], p, rtol=1e-5, atol=1e-6), name
    # And the step did something: the weights moved from their start.
    start = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=1).state_dict()
    assert not torch.allclose(start["o_proj.weight"], ranks[0]["weights"]["o_proj.weight"])
