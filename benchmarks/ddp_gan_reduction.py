"""What unused-parameter detection costs the GAN under DDP, against wrapping G and D separately.

Two CPU processes (gloo), study A's MNIST GAN nets, batch 64, one D and one G step per batch, in alternating
rounds. `separate`: G and D in their own DistributedDataParallel, so each backward reduces only its own
net. `find_unused`: one wrapper around both with `find_unused_parameters=True`, which is what genlab's GAN
runs under (`ddp_strategy: ddp_find_unused_parameters_true`): every backward walks the autograd graph and
all-reduces both nets' buckets.

    python benchmarks/ddp_gan_reduction.py
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from genlab.instantiate import build

ROOT = Path(__file__).resolve().parents[1]
BATCH, STEPS, ROUNDS, WARMUP = 64, 40, 3, 5


def nets() -> tuple[nn.Module, nn.Module]:
    """Study A's MNIST GAN pair as conf/nets/gan_mnist.yaml sets it."""
    torch.manual_seed(0)
    config = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "nets" / "gan_mnist.yaml"))
    g = build(config["generator"], latent_dim=config["latent_dim"], image_shape=[1, 28, 28])
    d = build(config["discriminator"], image_shape=[1, 28, 28], out_features=1)
    return g, d


class Pair(nn.Module):
    def __init__(self, g: nn.Module, d: nn.Module) -> None:
        super().__init__()
        self.g, self.d = g, d

    def forward(self, which: str, x: torch.Tensor) -> torch.Tensor:
        return self.d(x) if which == "d" else self.d(self.g(x))


def steps(mode: str, n: int) -> float:
    g, d = nets()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    if mode == "separate":
        g_ddp, d_ddp = DDP(g), DDP(d)
    else:
        pair = DDP(Pair(g, d), find_unused_parameters=True)
    real = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)
    start = time.perf_counter()
    for _ in range(n):
        z = torch.randn(BATCH, 100)
        with torch.no_grad():
            fake = g(z)
        both = torch.cat([real, fake])
        logits = d_ddp(both) if mode == "separate" else pair("d", both)
        d_loss = F.binary_cross_entropy_with_logits(logits, torch.cat([ones, zeros]))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        if mode == "separate":
            logits = d(g_ddp(torch.randn(BATCH, 100)))  # D's own wrapper stays out of G's step
        else:
            logits = pair("g", torch.randn(BATCH, 100))
        g_loss = F.binary_cross_entropy_with_logits(logits, ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)
    return (time.perf_counter() - start) / n


def worker(rank: int, results: dict) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533")
    dist.init_process_group("gloo", rank=rank, world_size=2)
    times: dict[str, list[float]] = {"separate": [], "find_unused": []}
    for mode in times:
        steps(mode, WARMUP)
    for _ in range(ROUNDS):
        for mode in times:
            dist.barrier()
            times[mode].append(steps(mode, STEPS))
    if rank == 0:
        results.update({mode: statistics.median(t) for mode, t in times.items()})
    dist.destroy_process_group()


def main() -> None:
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(worker, args=(results,), nprocs=2)
        separate, unused = results["separate"], results["find_unused"]
    print("| DDP wrapping (2 CPU processes, gloo) | ms per batch (D + G step) |")
    print("|---|---|")
    print(f"| G and D wrapped separately | {1000 * separate:.1f} |")
    print(f"| one wrapper, find_unused_parameters=True | {1000 * unused:.1f} ({unused / separate:.3f}x) |")


if __name__ == "__main__":
    main()
