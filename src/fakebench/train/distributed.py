"""Training under ``torchrun``: DistributedDataParallel with the single-process seed semantics.

``--batch-size B`` is the GLOBAL batch: every rank draws the same seeded permutation the
single-process loader draws, cuts it into the same global batches of B and takes its own slice
of B / W images; DDP averages the gradients, and batch normalisation computes its statistics
over the global batch (:class:`GlobalBatchNorm`: two differentiable all-reduces; torch's
``SyncBatchNorm`` refuses CPU tensors). So W ranks with B / W images each take the same steps
as one process with B images (up to float summation order), whatever W is.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import BatchSampler, RandomSampler, Sampler

from ..errors import ConfigError


def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the environment ``torchrun`` sets; (0, 1, 0) alone."""
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")))


def rank_device(device: str) -> str:
    """``cuda`` under torchrun means this process's GPU, ``cuda:LOCAL_RANK``."""
    _, world, local = dist_env()
    return f"cuda:{local}" if device == "cuda" and world > 1 else device


def init_process_group(backend: str) -> bool:
    """Join the torchrun process group unless already in one; True when this call created it.
    ``FAKEBENCH_DIST_TIMEOUT`` (seconds, default one day) bounds how long a rank waits."""
    if dist.is_initialized():
        return False
    timeout = datetime.timedelta(seconds=float(os.environ.get("FAKEBENCH_DIST_TIMEOUT", "86400")))
    dist.init_process_group(backend=backend, timeout=timeout)
    return True


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class RankSlice(Sampler[list[int]]):
    """This rank's slice of every global batch of ``batches`` (a batch sampler of global
    batches): rank r of W gets items ``[r B/W, (r+1) B/W)`` of each."""

    def __init__(self, batches: Sampler[list[int]], rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.batches:
            per = len(b) // self.world
            yield list(b[self.rank * per : (self.rank + 1) * per])

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]


def global_batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool) -> BatchSampler:
    """The global batches of a seeded shuffle: exactly what ``DataLoader(shuffle=True,
    generator=..., batch_size=..., drop_last=...)`` draws in one process."""
    return BatchSampler(RandomSampler(range(n), generator=generator), batch_size, drop_last)


def rank_batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool) -> Sampler[list[int]]:
    """The batch sampler of this process: the global batches, sliced per rank under torchrun.
    Under torchrun B must be a multiple of W and the last partial global batch is dropped."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if world_size() > 1 else (0, 1)
    if world == 1:
        return global_batches(n, batch_size, generator, drop_last)
    if batch_size % world:
        raise ConfigError(f"batch_size: {batch_size} (the global batch) is not a multiple of the {world} ranks")
    if n < batch_size:
        raise ConfigError(f"batch_size: {batch_size} is larger than the {n} training images (torchrun drops partial "
                          "global batches)")
    return RankSlice(global_batches(n, batch_size, generator, True), rank, world)


class _SumOverRanks(torch.autograd.Function):
    """Sum of a tensor over the ranks; the gradient is summed over the ranks too (every rank's
    loss depends on every rank's input through the sum)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


def sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """Differentiable all-reduce (sum) over the process group."""
    return _SumOverRanks.apply(x)


class GlobalBatchNorm(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the global batch across the
    torchrun ranks (mean, then the variance around it, each one differentiable all-reduce); the
    running statistics follow ``BatchNorm2d``'s update with the global unbiased variance.
    Outside a process group, or in eval mode, it is ``BatchNorm2d``. State-dict keys are the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)
        c = x.shape[1]
        count = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        dist.all_reduce(count)
        count = count[0]
        mean = sum_over_ranks(x.sum((0, 2, 3))) / count
        centred = x - mean.view(1, c, 1, 1)
        var = sum_over_ranks(centred.pow(2).sum((0, 2, 3))) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1  # type: ignore[operator]
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(float(count) - 1, 1.0), alpha=m)
        out = centred / torch.sqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return out


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` (in place) by :class:`GlobalBatchNorm`
    sharing its parameters and buffers."""
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            new.load_state_dict(child.state_dict())
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module


def wrap_ddp(det: nn.Module, device: str) -> nn.Module:
    """``det`` with global batch norm, wrapped in DistributedDataParallel (buffers are kept in
    step by :class:`GlobalBatchNorm`, so they are not broadcast)."""
    from torch.nn.parallel import DistributedDataParallel

    convert_batchnorm(det)
    ids: Sequence[int] | None = [torch.device(device).index or 0] if device.startswith("cuda") else None
    return DistributedDataParallel(det, device_ids=ids, forward_sync_buffers=False)
