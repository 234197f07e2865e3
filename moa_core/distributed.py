"""Training on several processes with PyTorch's own engine: torchrun starts them and says in
the environment who each is (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); this module
joins them into a process group (NCCL on GPUs, gloo on CPUs) and gives the Trainer and the
models the few collective steps they need.

The contract, so that N processes train the model one process would (same global batch,
same seed): every rank draws the same permutation and takes its contiguous shard of each
global batch; a model's loss is a mean over its shard, and a statistic of the whole batch
(MoA+'s Γ = PᵀP) goes through `global_sum`, whose backward sends each rank's gradient to
every rank. DDP averages gradients over ranks, so the Trainer scales each rank's loss by
(shard size / batch size) × N: the sum over ranks is then the global batch's mean.
"""

from __future__ import annotations

import os
import types
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


class ShardingError(ValueError):
    """A training that several processes cannot share (one line for the CLI)."""


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


def current() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device_type: str) -> tuple[World, torch.device | None]:
    """Join torchrun's process group (a no-op outside torchrun); on GPUs, this rank's device
    (cuda:LOCAL_RANK), else None."""
    if not launched_by_torchrun():
        return World(), None
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    device = None
    if device_type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return current(), device


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _training_together() -> bool:
    """A training forward under several processes: every rank runs it at once. Evaluation
    (no gradients) runs on each rank alone, on its own batch, with no collective step."""
    return torch.is_grad_enabled() and current().active


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
    count = global_count(x.numel() // x.shape[1])
    mean = global_sum(x.sum(dims)) / count
    var = global_sum((x - mean.view(shape)).pow(2).sum(dims)) / count
    if norm.track_running_stats and norm.running_mean is not None:
        norm.num_batches_tracked.add_(1)
        momentum = (
            norm.momentum if norm.momentum is not None else 1 / float(norm.num_batches_tracked)
        )
        with torch.no_grad():
            norm.running_mean.lerp_(mean.detach(), momentum)
            norm.running_var.lerp_(var.detach() * count / max(count - 1, 1), momentum)
    y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + norm.eps)
    return y * norm.weight.view(shape) + norm.bias.view(shape) if norm.affine else y


def global_count(local: int) -> int:
    """In a training forward, the global batch's size from this rank's `local` one."""
    if not _training_together():
        return local
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


def broadcast_state(model: nn.Module) -> None:
    """Every rank takes rank 0's weights and buffers: after a whole-dataset step (VaDE's GMM
    fit) that rank 0's result decides."""
    if current().active:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)


def data_parallel(model: nn.Module) -> nn.Module:
    """The model wrapped for gradient all-reduce, its BatchNorms over the global batch; in
    one process the model itself."""
    if not current().active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    global_batch_norms(model)
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
