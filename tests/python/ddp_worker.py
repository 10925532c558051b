"""One rank of test_torch_distributed.py (rank 1 as a process; rank 0 runs in the test): trains mla.torch's module under
DistributedDataParallel (gloo, loopback) on its half of the batch, two SGD steps, then saves its
gradients and updated weights. Run by the test with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT."""
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import mla
from mla.torch import MultiHeadLatentAttention


def batch():
    g = torch.Generator().manual_seed(7)
    return torch.randn(4, 6, 64, generator=g), torch.randn(4, 6, 64, generator=g)


def train(model, x, target, steps=2):
    """Mean squared error, SGD; returns the last step's gradients."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), target).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        opt.step()
    return grads


def main(out_dir, rank=None, world=None):
    rank = int(os.environ["RANK"]) if rank is None else rank
    world = int(os.environ["WORLD_SIZE"]) if world is None else world
    dist.init_process_group("gloo", rank=rank, world_size=world)
    # Different seeds: DDP's broadcast from rank 0 must make the weights equal.
    model = MultiHeadLatentAttention(mla.Config.preset("tiny"), seed=1 + rank)
    ddp = DistributedDataParallel(model)
    x, target = batch()
    half = x.shape[0] // world
    grads = train(ddp, x[rank * half:(rank + 1) * half], target[rank * half:(rank + 1) * half])
    grads = {n[len("module."):]: g for n, g in grads.items()}
    torch.save({"grads": grads, "weights": model.state_dict()},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
