"""Model-agnostic trainer (minGPT style): epochs of index-sliced batches from a device tensor.

It knows a model only through `MixtureOutput` (a loss and gate probabilities), reports
through `TrainEvent`s to callbacks, obeys a `TrainingControl` between batches, and never
keeps weights that a NaN/Inf loss reached: it restores the last good snapshot and stops.

Losses stay on the device between checks: a host read per batch is free on a CPU and a stall
on a GPU, so the loss is read (and checked for NaN/Inf) after every batch on a CPU and every
`GPU_CHECK_EVERY` batches elsewhere, where a batch event is emitted too. Under torchrun each
process trains its shard of every global batch (`moa_core.distributed` has the rules).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from moa_core import distributed
from moa_core.analysis.density import plane_snapshot
from moa_core.analysis.eval_mode import eval_mode
from moa_core.analysis.routing import routing_views
from moa_core.data import Dataset
from moa_core.models.base import train_phases
from moa_core.train.control import TrainingControl
from moa_core.train.evaluate import evaluate
from moa_core.train.setup import TrainConfig

SNAPSHOT_SAMPLES = 8
GPU_CHECK_EVERY = 32  # batches between host reads of the loss off a CPU


@dataclass
class TrainEvent:
    """One thing that happened: kind is started | batch | epoch | finished | stopped | failed.
    `loss` is the batch's loss, or for an epoch its mean training loss.

    `started` carries a snapshot of the initial weights, so a live view has its first figure
    before the first epoch ends."""

    kind: str
    epoch: int
    step: int
    loss: float | None = None
    metrics: dict | None = None
    snapshot: dict | None = None
    message: str = ""


Callback = Callable[[TrainEvent], None]


def history_row(epoch: int, train_loss: float | None, metrics: dict | None) -> dict:
    """One finished epoch in a run's history: the Trainer's, and the history files'."""
    return {"epoch": epoch, "train_loss": train_loss, "metrics": metrics}


# A page's own live figures: (model in eval mode, training data) → entries added to every
# snapshot, so per-page drawing logic stays out of the Trainer.
SnapshotHook = Callable[[nn.Module, Dataset], dict]


@dataclass
class TrainResult:
    status: str
    message: str
    epochs_done: int
    seconds: float
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Train `model` on `dataset` (moved to the model's device once, as one tensor)."""

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        config: TrainConfig,
        device: torch.device,
        callbacks: list[Callback] | None = None,
        control: TrainingControl | None = None,
        eval_dataset: Dataset | None = None,
        snapshot_hooks: Sequence[SnapshotHook] = (),
    ) -> None:
        self.model = model.to(device)
        self.device = device
        self.data = dataset.to(device)
        # Clustering is scored on the training samples; a classifier on held-out ones.
        self.eval_source = self.data if eval_dataset is None else eval_dataset.to(device)
        self.eval_data = _subsample(self.eval_source, config.eval_limit, config.seed)
        config_of_model = getattr(model, "config", None)
        uses_targets = bool(getattr(config_of_model, "uses_targets", False))
        # Classifiers get class indices, regressors float targets [B, out], as forward's
        # second argument; clustering families only x.
        self.supervised = uses_targets or bool(getattr(config_of_model, "uses_labels", False))
        self.targets = _training_targets(self.data) if uses_targets else self.data.class_indices()
        self.config = config
        self.callbacks = list(callbacks or [])
        self.snapshot_hooks = tuple(snapshot_hooks)
        self.control = control or TrainingControl()
        # One Adam per training phase (paper 004's two-fold optimization has two).
        self.phases = train_phases(self.model)
        self.optimizers = [
            torch.optim.Adam(self.model.parameters(), lr=config.lr * phase.lr_scale)
            for phase in self.phases
        ]
        self.world = distributed.current()
        distributed.check_batches_share(len(self.data), config.batch_size, self.world)
        distributed.share_model(self.model)
        self.forward = torch.compile(self.model) if config.compile else self.model
        self.check_every = 1 if device.type == "cpu" else GPU_CHECK_EVERY
        self._last_good = self._state_copy()
        self._last_good_epoch = 0
        self.base_lr = config.lr
        self.history: list[dict] = []

    def fit(self) -> TrainResult:
        start = time.perf_counter()
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed)
        step, epoch = 0, 0
        total_steps = self.config.epochs * -(-len(self.data) // self.config.batch_size)
        status, message = "finished", ""
        started = {"total_steps": total_steps}
        self._emit(TrainEvent("started", 0, 0, metrics=started, snapshot=self.snapshot()))
        begin_epoch = getattr(self.model, "begin_epoch", None)
        for epoch in range(1, self.config.epochs + 1):
            if begin_epoch is not None:  # e.g. VaDE ends its pretraining with a GMM fit
                begin_epoch(epoch, self.data.x)
                distributed.broadcast_state(self.model)  # rank 0's fit decides
            order = torch.randperm(len(self.data), generator=generator, device=self.device)
            batches = order.split(self.config.batch_size)
            epoch_loss = torch.zeros((), device=self.device)
            nonfinite = torch.zeros((), device=self.device)
            for number, batch in enumerate(batches, 1):
                if not self.control.wait_for_turn():
                    status, message = "stopped", f"stopped by the user in epoch {epoch}"
                    break
                self._set_learning_rate(step / total_steps)
                shard = self.world.shard(batch)
                share = len(shard) / len(batch)  # of the global batch's mean loss
                with distributed.training_step(len(shard), len(batch)):
                    loss = self._train_step(self.data.x[shard], self.targets[shard], share)
                loss = loss * share
                epoch_loss += loss
                nonfinite += (~torch.isfinite(loss)).float()
                step += 1
                if step % self.check_every and number < len(batches):
                    continue
                value = float(distributed.reduced_sum(loss))  # the global batch's mean loss
                if float(distributed.reduced_sum(nonfinite)):
                    status, message = "failed", self._restore(f"loss became {value}", epoch, step)
                    break
                self._emit(TrainEvent("batch", epoch, step, loss=value))
                if self.control.delay:
                    time.sleep(self.control.delay)
            if status == "stopped" and float(nonfinite):  # a NaN since the last check (GPU)
                status, message = "failed", self._restore("loss became NaN/Inf", epoch, step)
            if status != "finished":
                break
            if not _weights_finite(self.model):  # a finite loss can still step into NaN
                status, message = "failed", self._restore("weights became NaN/Inf", epoch, step)
                break
            mean_loss = float(distributed.reduced_sum(epoch_loss)) / len(batches)
            self._end_epoch(epoch, step, mean_loss)
        metrics = self.history[-1]["metrics"] if self.history else {}
        seconds = time.perf_counter() - start
        result = TrainResult(status, message, self._last_good_epoch, seconds, metrics, self.history)
        self._emit(TrainEvent(status, epoch, step, metrics=metrics, message=message))
        return result

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, share: float) -> torch.Tensor:
        """Step each phase's optimizer in turn on this process's shard; the sum of the phase
        losses, detached, on the device (read only at a check: a NaN step is undone there).
        Each backward is scaled by the shard's `share` of the global batch × the number of
        processes, which the gradient average divides back out (1 in one process)."""
        self.model.train()
        losses = self._phase_losses(x, y)
        total = torch.zeros((), device=self.device)
        for optimizer in self.optimizers:
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.config.bf16):
                loss = next(losses)
            optimizer.zero_grad(set_to_none=True)
            (loss * (share * self.world.size) if self.world.active else loss).backward()
            distributed.average_gradients(self.model)  # over processes (none in one)
            optimizer.step()
            total = total + loss.detach().float()
        return total

    def _phase_losses(self, x: torch.Tensor, y: torch.Tensor) -> Iterator[torch.Tensor]:
        """Each phase's loss, computed only when asked for: inside that phase's autocast."""
        phase_losses = getattr(self.model, "phase_losses", None)
        if phase_losses:
            yield from phase_losses(x)
            return
        yield (self.forward(x, y) if self.supervised else self.forward(x)).loss

    def _end_epoch(self, epoch: int, step: int, train_loss: float) -> None:
        """Score, keep the weights as the last good snapshot, and report; `train_loss` is the
        epoch's mean over its global batches (the same for every process)."""
        metrics = evaluate(self.model, self.eval_data)
        self.history.append(history_row(epoch, train_loss, metrics))
        self._last_good = self._state_copy()
        self._last_good_epoch = epoch
        snapshot = self.snapshot()
        self._emit(TrainEvent("epoch", epoch, step, train_loss, metrics, snapshot))

    def _restore(self, problem: str, epoch: int, step: int) -> str:
        """Put the last good weights back; the message says what happened and what was kept."""
        self.model.load_state_dict(self._last_good)
        kept = f"epoch {self._last_good_epoch}" if self._last_good_epoch else "the initial weights"
        return f"{problem} at epoch {epoch}, batch {step}; kept the snapshot from {kept}"

    @torch.no_grad()
    def snapshot(self) -> dict:
        """A few inputs with each expert's reconstruction and gate, for the live grid; for 2-D
        points also the cluster densities over the plane, for the live contour plot; for
        routing networks the first input's routing; then each snapshot hook's entries."""
        self.model.eval()
        x = self.data.x[:SNAPSHOT_SAMPLES]
        out = self.model(x)
        self.model.train()
        snap = {"inputs": x.float().cpu().numpy(), "gate_probs": out.gate_probs.cpu().numpy()}
        if out.reconstructions is not None:
            snap["reconstructions"] = out.reconstructions.float().cpu().numpy()
        if out.routing:  # the first input's routing diagram, redrawn live
            snap["routing"] = routing_views(self.model, x[:1])[0]
        if self.data.kind == "points" and self.data.x.shape[1] == 2:
            snap["plane"] = plane_snapshot(self.model, self.data.x, self.config.seed)
        if self.snapshot_hooks:
            with eval_mode(self.model):
                for hook in self.snapshot_hooks:
                    snap.update(hook(self.model, self.data))
        return snap

    def _set_learning_rate(self, progress: float) -> None:
        """Base rate (the user may change it mid-run) times the schedule at `progress` ∈ [0, 1)."""
        new_base = self.control.take_learning_rate()
        if new_base is not None:
            self.base_lr = new_base
        factor = 1.0
        if self.config.lr_schedule == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * progress))
        for phase, optimizer in zip(self.phases, self.optimizers, strict=True):
            for group in optimizer.param_groups:
                group["lr"] = self.base_lr * factor * phase.lr_scale

    def _state_copy(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _emit(self, event: TrainEvent) -> None:
        for callback in self.callbacks:
            callback(event)


def warm_up() -> None:
    """Pay what a process's first optimizer pays (Adam imports torch._dynamo and sympy:
    seconds and ~150 MB) before the first student presses Start."""
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight])
    weight.sum().backward()
    optimizer.step()


def _weights_finite(model: nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


def _training_targets(dataset: Dataset) -> torch.Tensor:
    """A regressor's float targets [N, out], which the model config attached beforehand."""
    if dataset.targets is None:
        raise ValueError(
            f"'{dataset.name}' has no regression targets: pass config.prepare_dataset(dataset)"
        )
    return dataset.targets.float()


def _subsample(dataset: Dataset, limit: int, seed: int) -> Dataset:
    """At most `limit` samples for per-epoch metrics, so big datasets stay responsive."""
    if len(dataset) <= limit:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(dataset), generator=generator)[:limit].to(dataset.x.device)
    return dataset.take(keep)
