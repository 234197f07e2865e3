"""Training on several processes with PyTorch's own engine: torchrun starts them and says in
the environment who each is (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); this module
joins them into a process group (NCCL on GPUs, gloo on CPUs) and gives the Trainer and the
models the few collective steps they need.

The contract, so that N processes train the model one process would (same global batch,
same seed): every rank draws the same permutation and takes its contiguous shard of each
global batch; a model's loss is a mean over its shard; inside the Trainer's step a statistic
of the whole batch (MoA+'s Γ = PᵀP, every BatchNorm, the relevance normalization, the batch
entropy, γ's batch size) goes through `global_sum`/`global_mean_var`, whose backward sends
each rank's gradient to every rank; noise and augmentation are drawn for the global batch
from generators every rank holds in the same state, and each rank keeps its rows. Gradients
are averaged over ranks, so the Trainer scales each rank's loss by (shard size / batch size)
× N: the sum over ranks is then the global batch's mean.
"""

from __future__ import annotations

import math
import os
import threading
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

WAIT = timedelta(hours=6)  # the longest a rank waits for the others at a collective step


class ShardingError(ValueError):
    """A training that several processes cannot share, or a world they cannot form (one
    line for the CLI)."""


@dataclass(frozen=True)
class World:
    """This process's place among those training together (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and prints."""
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of a global batch of indices (sizes differ by ≤ 1)."""
        return batch.tensor_split(self.size)[self.rank] if self.active else batch


_LOCAL = threading.local()  # this thread: inside a training step? working alone?


def current() -> World:
    if getattr(_LOCAL, "alone", False):
        return World()
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def launched_by_torchrun() -> bool:
    size = os.environ.get("WORLD_SIZE", "1")
    if not size.isdigit():  # set by hand, not by torchrun
        raise ShardingError(f"WORLD_SIZE must be a whole number of processes, got {size!r}")
    return int(size) > 1


def join(device_type: str) -> tuple[World, torch.device | None]:
    """Join torchrun's process group (a no-op outside torchrun); on GPUs, this rank's device
    (cuda:LOCAL_RANK), else None."""
    if not launched_by_torchrun():
        return World(), None
    if not dist.is_initialized():  # rank 0 may pretrain alone for long while the rest wait
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", timeout=WAIT)
    device = None
    if device_type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return current(), device


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def training_step(shard: int = 1, total: int = 1) -> Iterator[None]:
    """The Trainer's step on one global batch of `total` samples, `shard` of them this
    rank's: inside it, under several processes, every rank runs the same code at once, so
    batch statistics and noise span the global batch. Outside it (evaluation, snapshots,
    whole-dataset fits) each rank works alone."""
    _LOCAL.step, _LOCAL.shard, _LOCAL.total = True, shard, total
    try:
        yield
    finally:
        _LOCAL.step = False


@contextmanager
def alone() -> Iterator[None]:
    """Rank 0's whole-dataset work while the other ranks wait (MoE-VAE's pretraining, with
    its UMAP and HDBSCAN): inside, this process trains as the only one."""
    _LOCAL.alone = True
    try:
        yield
    finally:
        _LOCAL.alone = False


def _training_together() -> bool:
    return getattr(_LOCAL, "step", False) and current().active


def global_sum(tensor: torch.Tensor) -> torch.Tensor:
    """In a training forward, Σ over every rank's shard, with gradients flowing back to each
    rank (autograd all-reduce); otherwise the tensor itself."""
    if not _training_together():
        return tensor
    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():  # its successor is private (_functional_collectives)
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(tensor)


def global_batch_norms(model: nn.Module) -> None:
    """Make every BatchNorm of `model` normalize over the global batch in a training forward
    under several processes. nn.SyncBatchNorm does that on GPUs only, so the forward of each
    BatchNorm instance is replaced instead (its weights, buffers and checkpoint keys stay)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.forward = types.MethodType(_global_batch_norm, module)


def _global_batch_norm(norm: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm's training forward with the mean and (biased) variance of every rank's
    shard, the running statistics updated as BatchNorm does (unbiased variance)."""
    if not (norm.training and _training_together()):
        return type(norm).forward(norm, x)
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    mean, var, count = global_mean_var(x, dims)
    if norm.track_running_stats and norm.running_mean is not None:
        norm.num_batches_tracked.add_(1)
        momentum = (
            norm.momentum if norm.momentum is not None else 1 / float(norm.num_batches_tracked)
        )
        with torch.no_grad():
            norm.running_mean.lerp_(mean.detach(), momentum)
            norm.running_var.lerp_(var.detach() * count / max(count - 1, 1), momentum)
    y = (x.float() - mean.view(shape)) / torch.sqrt(var.view(shape) + norm.eps)
    y = y * norm.weight.view(shape) + norm.bias.view(shape) if norm.affine else y
    return y.to(x.dtype)


def global_mean_var(x: torch.Tensor, dims: list[int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean and biased variance over `dims` of the global batch (gradients flow to every
    rank), and how many values each covers; in one process, or outside a step, of `x`."""
    count = global_count(math.prod(x.shape[d] for d in dims))
    x = x.float()  # under bf16 autocast too: statistics in float32, as BatchNorm keeps them
    mean = global_sum(x.sum(dims, keepdim=True)) / count
    var = global_sum((x - mean).pow(2).sum(dims, keepdim=True)) / count
    return mean.squeeze(dims), var.squeeze(dims), count


def global_rows(local: int) -> tuple[int, int]:
    """The global batch's size and where this rank's `local` rows start in it (contiguous
    shards, as `World.shard` cuts them); in one process, or outside a step, (local, 0)."""
    if not _training_together():
        return local, 0
    world = current()
    total = global_count(local)
    base, extra = divmod(total, world.size)
    return total, world.rank * base + min(world.rank, extra)


def check_batches_share(samples: int, batch_size: int, world: World) -> None:
    """Several processes need global batches that give every process a sample: refuse, in
    one line, a batch size or a last batch smaller than the number of processes."""
    if not world.active:
        return
    last = samples % batch_size
    if 0 < last < world.size or batch_size < world.size:
        raise ShardingError(
            f"a batch of {min(last or batch_size, batch_size)} samples cannot be shared by "
            f"{world.size} processes: change batch_size"
        )


def shard_rows(drawn: torch.Tensor, local: int, start: int) -> torch.Tensor:
    """This rank's rows of a draw made for the whole global batch from a generator that every
    rank holds in the same state: N processes then use the noise one process uses."""
    return drawn if len(drawn) == local else drawn[start : start + local]


def global_count(local: int) -> int:
    """In a training step, the global count of what this rank counts `local` of: samples, or
    values per channel (samples × pixels). Known from the step's batch sizes when `local`
    is a whole number per sample (no device-to-host wait); all-reduced otherwise."""
    if not _training_together():
        return local
    shard, total = _LOCAL.shard, _LOCAL.total
    if local % shard == 0:
        return local // shard * total
    count = torch.tensor(float(local), device=_collective_device())
    dist.all_reduce(count)
    return int(count.item())


def _collective_device() -> torch.device:
    return (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )


def reduced_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Σ over ranks of a value that needs no gradient (a loss to report, a NaN flag)."""
    if current().active:
        tensor = tensor.detach().clone()
        dist.all_reduce(tensor)
    return tensor


def broadcast_ints(values: list[int] | None) -> list[int]:
    """Rank 0's list of integers (the others pass None) on every rank; in one process the
    list itself. An empty list says rank 0 had nothing to give (its step failed)."""
    if not current().active:
        return list(values or [])
    device = _collective_device()
    length = torch.tensor(len(values or []), device=device)
    dist.broadcast(length, 0)
    if not int(length):
        return []
    data = torch.tensor(values or [0] * int(length), dtype=torch.long, device=device)
    dist.broadcast(data, 0)
    return [int(v) for v in data.tolist()]


def broadcast_state(model: nn.Module) -> None:
    """Every rank takes rank 0's weights and buffers: after a whole-dataset step (VaDE's GMM
    fit) that rank 0's result decides."""
    if current().active:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)


def share_model(model: nn.Module) -> None:
    """Ready `model` for training on several processes: every rank takes rank 0's weights,
    and its BatchNorms normalize over the global batch. Gradients are then averaged by
    `average_gradients` after each backward, not by DistributedDataParallel's hooks: the
    families' batch statistics run autograd all-reduces inside the backward, and with them
    DDP's hooks missed gradients of a routing network (by default it raised; with
    `static_graph` the ranks' weights drifted apart), where one all-reduce afterwards is
    exact whatever the graph (tests/test_distributed.py checks every rank's weights)."""
    if current().active:
        global_batch_norms(model)
        broadcast_state(model)


def average_gradients(model: nn.Module) -> None:
    """Each gradient becomes its mean over ranks (what DDP computes), in one flat all-reduce.
    Every rank runs the same graph, so the same parameters have gradients everywhere."""
    if not current().active:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= current().size
    for grad, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        grad.copy_(part.view_as(grad))
